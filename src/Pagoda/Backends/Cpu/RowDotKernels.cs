using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The decode GEMV kernel used when batch invariance is off: each weight row is read as one linear
/// stream (instead of <see cref="DotKernels.Dot1x4"/>'s four interleaved streams, which the hardware
/// prefetcher follows less well) and reduced into four 8-lane accumulators, so the FMA latency stays
/// hidden within a single row.
/// </summary>
/// <remarks>
/// The per-element order is fixed but differs from <see cref="DotKernels"/>'s: 8-element block b of the
/// row goes into accumulator b mod 4 while whole 32-element groups last, the remaining whole blocks into
/// accumulator 0, then (a0 + a1) + (a2 + a3) is summed across lanes and the scalar tail added in k order.
/// The panel GEMM keeps the single-accumulator order (its 4×3 register tiles have no room for four
/// accumulators per element), so a row computed here and the same row computed in a batch may differ in
/// the last bits. 8-lane vectors on every machine: the loop is bound by memory, not lanes.
/// </remarks>
internal static unsafe class RowDotKernels
{
    /// <summary>
    /// How far ahead of the element being read the loop prefetches, in bytes. Rows of one chunk are
    /// contiguous, so near a row's end this reaches into the next row and the stream stays unbroken.
    /// (1 and 2 KiB measured alike; 4 KiB and more slightly slower.)
    /// </summary>
    internal const int PrefetchBytes = 1024;

    /// <summary>One element: x [k] · w row [k], the row read linearly.</summary>
    public static float DotRow<TW>(float* x, byte* w, int k) where TW : IWeightFormat
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        // 64 elements per step so that whole cache lines are prefetched once each, int8 included (64
        // bytes); block b still goes into accumulator b mod 4, the order of the 32-element loop below.
        for (; i <= k - 64; i += 64)
        {
            Prefetch<TW>(w, i);
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), TW.Load8(w, i), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), TW.Load8(w, i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 16), TW.Load8(w, i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 24), TW.Load8(w, i + 24), a3);
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 32), TW.Load8(w, i + 32), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 40), TW.Load8(w, i + 40), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 48), TW.Load8(w, i + 48), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 56), TW.Load8(w, i + 56), a3);
        }
        for (; i <= k - 32; i += 32)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), TW.Load8(w, i), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), TW.Load8(w, i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 16), TW.Load8(w, i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 24), TW.Load8(w, i + 24), a3);
        }
        for (; i <= k - 8; i += 8)
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), TW.Load8(w, i), a0);
        float s = DotKernels.HSum((a0 + a1) + (a2 + a3));
        for (; i < k; i++)
            s = MathF.FusedMultiplyAdd(x[i], TW.Load1(w, i), s);
        return s;
    }

    // The lines holding the 64 elements PrefetchBytes ahead of element i: one line of int8, two of
    // bf16/f16, four of f32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch<TW>(byte* row, int i) where TW : IWeightFormat
    {
        if (!Sse.IsSupported)
            return;
        byte* p = row + (long)i * TW.ElementSize + PrefetchBytes;
        Sse.Prefetch0(p);
        if (TW.ElementSize >= 2)
            Sse.Prefetch0(p + 64);
        if (TW.ElementSize == 4)
        {
            Sse.Prefetch0(p + 128);
            Sse.Prefetch0(p + 192);
        }
    }
}
