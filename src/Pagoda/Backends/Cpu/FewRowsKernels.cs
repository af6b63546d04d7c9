using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// GEMV for a few input rows (a small decode batch, or one request verifying speculative drafts): four weight rows are
/// widened in registers once and multiplied into several input rows at a time, so a weight element costs one widening
/// load for 4 (AVX-512) or 2 (AVX2) FMAs, where a row at a time pays it for each. The panel GEMM widens every weight
/// into memory first, which only pays when many rows share it. Each element's order is its own (16- or 8-lane
/// accumulator over k, the lanes summed, the scalar tail): not the batch-invariant order, so only the default mode uses it.
/// </summary>
internal static unsafe class FewRowsKernels
{
    /// <summary>Input rows one call takes: 4 with 32 vector registers (16 accumulators, 4 weights, 1 input), else 2.</summary>
    public static int RowsPerCall(bool wide) => wide ? 4 : 2;

    /// <summary>
    /// sums[r * 4 + c] = x row r · w row c, for <see cref="RowsPerCall"/> input rows <paramref name="xStride"/> floats apart
    /// and four consecutive weight rows.
    /// </summary>
    public static void DotRowsX4<TW>(float* x, long xStride, byte* w, long wRowBytes, int k, float* sums, bool wide) where TW : IWeightFormat
    {
        if (wide)
            Dot4x4_512<TW>(x, xStride, w, wRowBytes, k, sums);
        else
            Dot2x4<TW>(x, xStride, w, wRowBytes, k, sums);
    }

    private static void Dot4x4_512<TW>(float* x, long xStride, byte* w, long wRowBytes, int k, float* sums) where TW : IWeightFormat
    {
        byte* w1 = w + wRowBytes, w2 = w1 + wRowBytes, w3 = w2 + wRowBytes;
        float* x1 = x + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        int i = 0;
        for (; i <= k - 16; i += 16)
        {
            var b0 = TW.Load16(w, i);
            var b1 = TW.Load16(w1, i);
            var b2 = TW.Load16(w2, i);
            var b3 = TW.Load16(w3, i);
            var xv = Vector512.Load(x + i);
            a00 = Vector512.FusedMultiplyAdd(xv, b0, a00);
            a01 = Vector512.FusedMultiplyAdd(xv, b1, a01);
            a02 = Vector512.FusedMultiplyAdd(xv, b2, a02);
            a03 = Vector512.FusedMultiplyAdd(xv, b3, a03);
            xv = Vector512.Load(x1 + i);
            a10 = Vector512.FusedMultiplyAdd(xv, b0, a10);
            a11 = Vector512.FusedMultiplyAdd(xv, b1, a11);
            a12 = Vector512.FusedMultiplyAdd(xv, b2, a12);
            a13 = Vector512.FusedMultiplyAdd(xv, b3, a13);
            xv = Vector512.Load(x2 + i);
            a20 = Vector512.FusedMultiplyAdd(xv, b0, a20);
            a21 = Vector512.FusedMultiplyAdd(xv, b1, a21);
            a22 = Vector512.FusedMultiplyAdd(xv, b2, a22);
            a23 = Vector512.FusedMultiplyAdd(xv, b3, a23);
            xv = Vector512.Load(x3 + i);
            a30 = Vector512.FusedMultiplyAdd(xv, b0, a30);
            a31 = Vector512.FusedMultiplyAdd(xv, b1, a31);
            a32 = Vector512.FusedMultiplyAdd(xv, b2, a32);
            a33 = Vector512.FusedMultiplyAdd(xv, b3, a33);
        }
        sums[0] = Vector512.Sum(a00); sums[1] = Vector512.Sum(a01); sums[2] = Vector512.Sum(a02); sums[3] = Vector512.Sum(a03);
        sums[4] = Vector512.Sum(a10); sums[5] = Vector512.Sum(a11); sums[6] = Vector512.Sum(a12); sums[7] = Vector512.Sum(a13);
        sums[8] = Vector512.Sum(a20); sums[9] = Vector512.Sum(a21); sums[10] = Vector512.Sum(a22); sums[11] = Vector512.Sum(a23);
        sums[12] = Vector512.Sum(a30); sums[13] = Vector512.Sum(a31); sums[14] = Vector512.Sum(a32); sums[15] = Vector512.Sum(a33);
        Tail<TW>(x, xStride, 4, w, wRowBytes, i, k, sums);
    }

    private static void Dot2x4<TW>(float* x, long xStride, byte* w, long wRowBytes, int k, float* sums) where TW : IWeightFormat
    {
        byte* w1 = w + wRowBytes, w2 = w1 + wRowBytes, w3 = w2 + wRowBytes;
        float* x1 = x + xStride;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        int i = 0;
        for (; i <= k - 8; i += 8)
        {
            var b0 = TW.Load8(w, i);
            var b1 = TW.Load8(w1, i);
            var b2 = TW.Load8(w2, i);
            var b3 = TW.Load8(w3, i);
            var xv = Vector256.Load(x + i);
            a00 = Vector256.FusedMultiplyAdd(xv, b0, a00);
            a01 = Vector256.FusedMultiplyAdd(xv, b1, a01);
            a02 = Vector256.FusedMultiplyAdd(xv, b2, a02);
            a03 = Vector256.FusedMultiplyAdd(xv, b3, a03);
            xv = Vector256.Load(x1 + i);
            a10 = Vector256.FusedMultiplyAdd(xv, b0, a10);
            a11 = Vector256.FusedMultiplyAdd(xv, b1, a11);
            a12 = Vector256.FusedMultiplyAdd(xv, b2, a12);
            a13 = Vector256.FusedMultiplyAdd(xv, b3, a13);
        }
        sums[0] = Vector256.Sum(a00); sums[1] = Vector256.Sum(a01); sums[2] = Vector256.Sum(a02); sums[3] = Vector256.Sum(a03);
        sums[4] = Vector256.Sum(a10); sums[5] = Vector256.Sum(a11); sums[6] = Vector256.Sum(a12); sums[7] = Vector256.Sum(a13);
        Tail<TW>(x, xStride, 2, w, wRowBytes, i, k, sums);
    }

    // The scalar tail of a rows × 4 tile, continuing each element's sum in k order.
    private static void Tail<TW>(float* x, long xStride, int rows, byte* w, long wRowBytes, int from, int k, float* sums) where TW : IWeightFormat
    {
        for (int i = from; i < k; i++)
        {
            for (int r = 0; r < rows; r++)
            {
                float xs = x[r * xStride + i];
                for (int c = 0; c < 4; c++)
                    sums[r * 4 + c] = MathF.FusedMultiplyAdd(xs, TW.Load1(w + c * wRowBytes, i), sums[r * 4 + c]);
            }
        }
    }
}
