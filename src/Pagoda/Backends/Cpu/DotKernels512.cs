using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The 16-lane (AVX-512) twins of the dot kernels: same structure and the same per-element order among
/// themselves (one accumulator over k = 0, 16, 32, ..., the lanes summed, then the scalar tail).
/// </summary>
internal static unsafe partial class DotKernels
{
    private static float Dot512<TW>(float* x, byte* w, int k) where TW : IWeightFormat
    {
        var acc = Vector512<float>.Zero;
        int i = 0;
        for (; i <= k - 16; i += 16)
            acc = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), TW.Load16(w, i), acc);
        float s = Vector512.Sum(acc);
        for (; i < k; i++)
            s = MathF.FusedMultiplyAdd(x[i], TW.Load1(w, i), s);
        return s;
    }

    private static void Dot1x4_512<TW>(float* x, byte* w, long wRowBytes, int k, float* sums) where TW : IWeightFormat
    {
        byte* w1 = w + wRowBytes, w2 = w1 + wRowBytes, w3 = w2 + wRowBytes, next = w3 + wRowBytes;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i <= k - 16; i += 16)
        {
            // 16 elements per step: twice the 8-element prefetch.
            PrefetchNextBlock<TW>(next, i);
            PrefetchNextBlock<TW>(next, i + 8);
            var xv = Vector512.Load(x + i);
            a0 = Vector512.FusedMultiplyAdd(xv, TW.Load16(w, i), a0);
            a1 = Vector512.FusedMultiplyAdd(xv, TW.Load16(w1, i), a1);
            a2 = Vector512.FusedMultiplyAdd(xv, TW.Load16(w2, i), a2);
            a3 = Vector512.FusedMultiplyAdd(xv, TW.Load16(w3, i), a3);
        }
        float s0 = Vector512.Sum(a0), s1 = Vector512.Sum(a1), s2 = Vector512.Sum(a2), s3 = Vector512.Sum(a3);
        for (; i < k; i++)
        {
            float xi = x[i];
            s0 = MathF.FusedMultiplyAdd(xi, TW.Load1(w, i), s0);
            s1 = MathF.FusedMultiplyAdd(xi, TW.Load1(w1, i), s1);
            s2 = MathF.FusedMultiplyAdd(xi, TW.Load1(w2, i), s2);
            s3 = MathF.FusedMultiplyAdd(xi, TW.Load1(w3, i), s3);
        }
        sums[0] = s0;
        sums[1] = s1;
        sums[2] = s2;
        sums[3] = s3;
    }

    private static void Dot4x3_512(float* x, int xStride, float* w, int wStride, int k, float* sums)
    {
        float* x1 = x + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
        float* w1 = w + wStride, w2 = w1 + wStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        int i = 0;
        for (; i <= k - 16; i += 16)
        {
            var b0 = Vector512.Load(w + i);
            var b1 = Vector512.Load(w1 + i);
            var b2 = Vector512.Load(w2 + i);
            var xv = Vector512.Load(x + i);
            a00 = Vector512.FusedMultiplyAdd(xv, b0, a00);
            a01 = Vector512.FusedMultiplyAdd(xv, b1, a01);
            a02 = Vector512.FusedMultiplyAdd(xv, b2, a02);
            xv = Vector512.Load(x1 + i);
            a10 = Vector512.FusedMultiplyAdd(xv, b0, a10);
            a11 = Vector512.FusedMultiplyAdd(xv, b1, a11);
            a12 = Vector512.FusedMultiplyAdd(xv, b2, a12);
            xv = Vector512.Load(x2 + i);
            a20 = Vector512.FusedMultiplyAdd(xv, b0, a20);
            a21 = Vector512.FusedMultiplyAdd(xv, b1, a21);
            a22 = Vector512.FusedMultiplyAdd(xv, b2, a22);
            xv = Vector512.Load(x3 + i);
            a30 = Vector512.FusedMultiplyAdd(xv, b0, a30);
            a31 = Vector512.FusedMultiplyAdd(xv, b1, a31);
            a32 = Vector512.FusedMultiplyAdd(xv, b2, a32);
        }
        sums[0] = Vector512.Sum(a00); sums[1] = Vector512.Sum(a01); sums[2] = Vector512.Sum(a02);
        sums[3] = Vector512.Sum(a10); sums[4] = Vector512.Sum(a11); sums[5] = Vector512.Sum(a12);
        sums[6] = Vector512.Sum(a20); sums[7] = Vector512.Sum(a21); sums[8] = Vector512.Sum(a22);
        sums[9] = Vector512.Sum(a30); sums[10] = Vector512.Sum(a31); sums[11] = Vector512.Sum(a32);
        Tail(x, xStride, w, wStride, i, k, sums);
    }

    /// <summary>
    /// An 8-row × 3-column tile (GEMM on a widened panel, AVX-512 only): 24 accumulators, 3 weights and 1
    /// input in 28 of the 32 vector registers, 11 loads feeding 24 FMAs. Each element in Dot512's order.
    /// sums[r * 3 + c] = x row r · w row c.
    /// </summary>
    public static void Dot8x3_512(float* x, int xStride, float* w, int wStride, int k, float* sums)
    {
        float* w1 = w + wStride, w2 = w1 + wStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        Vector512<float> a40 = default, a41 = default, a42 = default, a50 = default, a51 = default, a52 = default;
        Vector512<float> a60 = default, a61 = default, a62 = default, a70 = default, a71 = default, a72 = default;
        float* x1 = x + xStride, x2 = x1 + xStride, x3 = x2 + xStride, x4 = x3 + xStride, x5 = x4 + xStride, x6 = x5 + xStride, x7 = x6 + xStride;
        int i = 0;
        for (; i <= k - 16; i += 16)
        {
            var b0 = Vector512.Load(w + i);
            var b1 = Vector512.Load(w1 + i);
            var b2 = Vector512.Load(w2 + i);
            var xv = Vector512.Load(x + i);
            a00 = Vector512.FusedMultiplyAdd(xv, b0, a00);
            a01 = Vector512.FusedMultiplyAdd(xv, b1, a01);
            a02 = Vector512.FusedMultiplyAdd(xv, b2, a02);
            xv = Vector512.Load(x1 + i);
            a10 = Vector512.FusedMultiplyAdd(xv, b0, a10);
            a11 = Vector512.FusedMultiplyAdd(xv, b1, a11);
            a12 = Vector512.FusedMultiplyAdd(xv, b2, a12);
            xv = Vector512.Load(x2 + i);
            a20 = Vector512.FusedMultiplyAdd(xv, b0, a20);
            a21 = Vector512.FusedMultiplyAdd(xv, b1, a21);
            a22 = Vector512.FusedMultiplyAdd(xv, b2, a22);
            xv = Vector512.Load(x3 + i);
            a30 = Vector512.FusedMultiplyAdd(xv, b0, a30);
            a31 = Vector512.FusedMultiplyAdd(xv, b1, a31);
            a32 = Vector512.FusedMultiplyAdd(xv, b2, a32);
            xv = Vector512.Load(x4 + i);
            a40 = Vector512.FusedMultiplyAdd(xv, b0, a40);
            a41 = Vector512.FusedMultiplyAdd(xv, b1, a41);
            a42 = Vector512.FusedMultiplyAdd(xv, b2, a42);
            xv = Vector512.Load(x5 + i);
            a50 = Vector512.FusedMultiplyAdd(xv, b0, a50);
            a51 = Vector512.FusedMultiplyAdd(xv, b1, a51);
            a52 = Vector512.FusedMultiplyAdd(xv, b2, a52);
            xv = Vector512.Load(x6 + i);
            a60 = Vector512.FusedMultiplyAdd(xv, b0, a60);
            a61 = Vector512.FusedMultiplyAdd(xv, b1, a61);
            a62 = Vector512.FusedMultiplyAdd(xv, b2, a62);
            xv = Vector512.Load(x7 + i);
            a70 = Vector512.FusedMultiplyAdd(xv, b0, a70);
            a71 = Vector512.FusedMultiplyAdd(xv, b1, a71);
            a72 = Vector512.FusedMultiplyAdd(xv, b2, a72);
        }
        sums[0] = Vector512.Sum(a00); sums[1] = Vector512.Sum(a01); sums[2] = Vector512.Sum(a02);
        sums[3] = Vector512.Sum(a10); sums[4] = Vector512.Sum(a11); sums[5] = Vector512.Sum(a12);
        sums[6] = Vector512.Sum(a20); sums[7] = Vector512.Sum(a21); sums[8] = Vector512.Sum(a22);
        sums[9] = Vector512.Sum(a30); sums[10] = Vector512.Sum(a31); sums[11] = Vector512.Sum(a32);
        sums[12] = Vector512.Sum(a40); sums[13] = Vector512.Sum(a41); sums[14] = Vector512.Sum(a42);
        sums[15] = Vector512.Sum(a50); sums[16] = Vector512.Sum(a51); sums[17] = Vector512.Sum(a52);
        sums[18] = Vector512.Sum(a60); sums[19] = Vector512.Sum(a61); sums[20] = Vector512.Sum(a62);
        sums[21] = Vector512.Sum(a70); sums[22] = Vector512.Sum(a71); sums[23] = Vector512.Sum(a72);
        Tail(x, xStride, w, wStride, i, k, sums);
        Tail(x4, xStride, w, wStride, i, k, sums + 12);
    }
}
