using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The dot-product micro-kernels behind Linear. Every kernel computes each output element in the same
/// order — one 8-lane accumulator fused-multiply-added over k = 0, 8, 16, ..., then the lanes summed by
/// <see cref="HSum"/>, then the scalar tail — so an element's value does not depend on the tile shape,
/// on how many rows share the batch, or on which path (GEMV or GEMM) computed it: batch invariance.
/// </summary>
/// <remarks>
/// On AVX-512 hardware the kernels use 16-lane accumulators instead (DotKernels512); the choice is one
/// process-wide flag, so every path on a machine still shares one order.
/// </remarks>
internal static unsafe partial class DotKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum(Vector256<float> v) => Vector256.Sum(v);

    /// <summary>One element: x [k] · w row [k].</summary>
    public static float Dot<TW>(float* x, byte* w, int k, bool wide) where TW : IWeightFormat
    {
        if (wide)
            return Dot512<TW>(x, w, k);
        var acc = Vector256<float>.Zero;
        int i = 0;
        for (; i <= k - 8; i += 8)
            acc = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), TW.Load8(w, i), acc);
        float s = HSum(acc);
        for (; i < k; i++)
            s = MathF.FusedMultiplyAdd(x[i], TW.Load1(w, i), s);
        return s;
    }

    /// <summary>
    /// One input row against four consecutive weight rows (GEMV): four independent chains hide FMA latency.
    /// The four rows are read as four interleaved streams of a few KiB each, too short for the hardware
    /// prefetcher to ramp up, so the loop also prefetches the next four rows in address order, at the
    /// rate it consumes this block (which keeps the block after this one arriving while it computes).
    /// </summary>
    public static void Dot1x4<TW>(float* x, byte* w, long wRowBytes, int k, float* sums, bool wide) where TW : IWeightFormat
    {
        if (wide)
        {
            Dot1x4_512<TW>(x, w, wRowBytes, k, sums);
            return;
        }
        byte* w1 = w + wRowBytes, w2 = w1 + wRowBytes, w3 = w2 + wRowBytes, next = w3 + wRowBytes;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i <= k - 8; i += 8)
        {
            PrefetchNextBlock<TW>(next, i);
            var xv = Vector256.Load(x + i);
            a0 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w, i), a0);
            a1 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w1, i), a1);
            a2 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w2, i), a2);
            a3 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w3, i), a3);
        }
        float s0 = HSum(a0), s1 = HSum(a1), s2 = HSum(a2), s3 = HSum(a3);
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

    /// <summary>
    /// Prefetches the part of the next 4-row block that corresponds to element <paramref name="i"/> of this
    /// one: 4 rows × 8 elements are consumed per step, so the next block's bytes [4·size·i, 4·size·(i+8))
    /// are requested. Past the last row this only names addresses nobody reads; prefetches never fault.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchNextBlock<TW>(byte* next, int i) where TW : IWeightFormat
    {
        if (!Sse.IsSupported)
            return;
        byte* p = next + (long)i * 4 * TW.ElementSize;
        Sse.Prefetch0(p);
        if (TW.ElementSize == 4)
            Sse.Prefetch0(p + 64);
    }

    /// <summary>
    /// A 4-row × 3-column tile over float32 weights (GEMM on a widened panel): 7 loads feed 12 FMAs and
    /// the 12 accumulators, 3 weights and 1 input fill the 16 vector registers.
    /// sums[r * 3 + c] = x row r · w row c.
    /// </summary>
    public static void Dot4x3(float* x, int xStride, float* w, int wStride, int k, float* sums, bool wide)
    {
        if (wide)
        {
            Dot4x3_512(x, xStride, w, wStride, k, sums);
            return;
        }
        float* x1 = x + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
        float* w1 = w + wStride, w2 = w1 + wStride;
        Vector256<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        int i = 0;
        for (; i <= k - 8; i += 8)
        {
            var b0 = Vector256.Load(w + i);
            var b1 = Vector256.Load(w1 + i);
            var b2 = Vector256.Load(w2 + i);
            var xv = Vector256.Load(x + i);
            a00 = Vector256.FusedMultiplyAdd(xv, b0, a00);
            a01 = Vector256.FusedMultiplyAdd(xv, b1, a01);
            a02 = Vector256.FusedMultiplyAdd(xv, b2, a02);
            xv = Vector256.Load(x1 + i);
            a10 = Vector256.FusedMultiplyAdd(xv, b0, a10);
            a11 = Vector256.FusedMultiplyAdd(xv, b1, a11);
            a12 = Vector256.FusedMultiplyAdd(xv, b2, a12);
            xv = Vector256.Load(x2 + i);
            a20 = Vector256.FusedMultiplyAdd(xv, b0, a20);
            a21 = Vector256.FusedMultiplyAdd(xv, b1, a21);
            a22 = Vector256.FusedMultiplyAdd(xv, b2, a22);
            xv = Vector256.Load(x3 + i);
            a30 = Vector256.FusedMultiplyAdd(xv, b0, a30);
            a31 = Vector256.FusedMultiplyAdd(xv, b1, a31);
            a32 = Vector256.FusedMultiplyAdd(xv, b2, a32);
        }
        sums[0] = HSum(a00); sums[1] = HSum(a01); sums[2] = HSum(a02);
        sums[3] = HSum(a10); sums[4] = HSum(a11); sums[5] = HSum(a12);
        sums[6] = HSum(a20); sums[7] = HSum(a21); sums[8] = HSum(a22);
        sums[9] = HSum(a30); sums[10] = HSum(a31); sums[11] = HSum(a32);
        Tail(x, xStride, w, wStride, i, k, sums);
    }

    // The scalar tail of a 4×3 tile, continuing each element's sum in k order.
    private static void Tail(float* x, int xStride, float* w, int wStride, int from, int k, float* sums)
    {
        for (int i = from; i < k; i++)
        {
            for (int r = 0; r < 4; r++)
            {
                float xs = x[r * xStride + i];
                for (int c = 0; c < 3; c++)
                    sums[r * 3 + c] = MathF.FusedMultiplyAdd(xs, w[c * wStride + i], sums[r * 3 + c]);
            }
        }
    }

    /// <summary>Widens weight rows [first, first + count) into a float32 panel [count, k] (exact for every format).</summary>
    public static void WidenRows<TW>(byte* w, long wRowBytes, int first, int count, int k, float* panel) where TW : IWeightFormat
    {
        for (int r = 0; r < count; r++)
        {
            byte* row = w + (first + r) * wRowBytes;
            float* dst = panel + (long)r * k;
            int i = 0;
            for (; i <= k - 8; i += 8)
                TW.Load8(row, i).Store(dst + i);
            for (; i < k; i++)
                dst[i] = TW.Load1(row, i);
        }
    }
}
