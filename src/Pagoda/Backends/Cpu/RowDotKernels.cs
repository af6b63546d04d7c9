using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The decode GEMV kernels used when batch invariance is off: each weight row is read as one linear
/// stream (one or two rows per pass instead of <see cref="DotKernels.Dot1x4"/>'s four interleaved
/// streams, which the hardware prefetcher follows less well) and reduced into four 8-lane accumulators
/// so the FMA latency stays hidden within a single row.
/// </summary>
/// <remarks>
/// The per-element order is fixed but differs from <see cref="DotKernels"/>'s: 8-element block b of the
/// row goes into accumulator b mod 4 while whole 32-element groups last, the remaining whole blocks into
/// accumulator 0, then (a0 + a1) + (a2 + a3) is summed across lanes and the scalar tail added in k order.
/// The panel GEMM keeps the single-accumulator order (its 4×3 register tiles have no room for four
/// accumulators per element), so a row computed here and the same row computed in a prefill batch may
/// differ in the last bits. Both kernels below give each row the same bits, so which one covers a column
/// never matters. They use 8-lane vectors on every machine: the loop is bound by memory, not lanes.
/// </remarks>
internal static unsafe class RowDotKernels
{
    /// <summary>
    /// How far ahead of the element being read the loop prefetches, in bytes. Rows of one chunk are
    /// contiguous, so near a row's end this reaches into the next row, keeping the stream unbroken.
    /// </summary>
    internal const int PrefetchBytes = 1024;

    /// <summary>One element: x [k] · w row [k], the row read linearly.</summary>
    public static float DotRow<TW>(float* x, byte* w, int k) where TW : IWeightFormat
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i <= k - 32; i += 32)
        {
            Prefetch<TW>(w, i);
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

    /// <summary>
    /// Two consecutive weight rows against one input row, each row in <see cref="DotRow{TW}"/>'s order (so
    /// the same bits): two streams share each input load, which halves the input reads per weight byte.
    /// sums[0] = x · w row 0, sums[1] = x · w row 1.
    /// </summary>
    public static void Dot2Rows<TW>(float* x, byte* w, long wRowBytes, int k, float* sums) where TW : IWeightFormat
    {
        byte* w1 = w + wRowBytes;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int i = 0;
        for (; i <= k - 32; i += 32)
        {
            Prefetch<TW>(w, i);
            Prefetch<TW>(w1, i);
            var xv = Vector256.Load(x + i);
            a0 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w, i), a0);
            b0 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w1, i), b0);
            xv = Vector256.Load(x + i + 8);
            a1 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w, i + 8), a1);
            b1 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w1, i + 8), b1);
            xv = Vector256.Load(x + i + 16);
            a2 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w, i + 16), a2);
            b2 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w1, i + 16), b2);
            xv = Vector256.Load(x + i + 24);
            a3 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w, i + 24), a3);
            b3 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w1, i + 24), b3);
        }
        for (; i <= k - 8; i += 8)
        {
            var xv = Vector256.Load(x + i);
            a0 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w, i), a0);
            b0 = Vector256.FusedMultiplyAdd(xv, TW.Load8(w1, i), b0);
        }
        float s0 = DotKernels.HSum((a0 + a1) + (a2 + a3)), s1 = DotKernels.HSum((b0 + b1) + (b2 + b3));
        for (; i < k; i++)
        {
            float xi = x[i];
            s0 = MathF.FusedMultiplyAdd(xi, TW.Load1(w, i), s0);
            s1 = MathF.FusedMultiplyAdd(xi, TW.Load1(w1, i), s1);
        }
        sums[0] = s0;
        sums[1] = s1;
    }

    // 32 elements are consumed per step: one 64-byte line of bf16/f16, two of f32, half of int8 (whose
    // lines are then each requested twice, which costs an instruction and no traffic).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch<TW>(byte* row, int i) where TW : IWeightFormat
    {
        if (!Sse.IsSupported)
            return;
        byte* p = row + (long)i * TW.ElementSize + PrefetchBytes;
        Sse.Prefetch0(p);
        if (TW.ElementSize == 4)
            Sse.Prefetch0(p + 64);
    }
}
