using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The default mode's decode GEMV over int8 weights, in integer arithmetic: each input row is quantized
/// once per Linear to int16 (<see cref="QuantizeRow"/>), then 16 weights at a time are sign-extended to
/// int16 (vpmovsxbw) and multiplied with the input in pairs into int32 lanes (vpmaddwd). That is 3
/// instructions per 16 weights and row where widening to float32 takes 3 per 8, and the float path is
/// bound by instructions, not memory.
/// </summary>
/// <remarks>
/// Accuracy: an input element is rounded to the nearest multiple of its block's scale max|x| / 32767 (an
/// error of at most 1/65534 of the block's largest magnitude, ~bf16's relative step for the largest
/// elements); the integer products and sums are then exact within a block. The weights stay the same
/// int8 values, so this is weight-only int8 with a bounded input rounding, not int8 activations.
/// Overflow: one vpmaddwd lane adds at most 2 · 32767 · 128 = 8,388,352 (|w| ≤ 127 after quantization; 128
/// covers a stored -128), and a lane receives at most <see cref="ScaleBlock"/> / 16 = 256 of them per block
/// before the block's int32 sums are converted to float: 256 · 8,388,352 = 2,147,418,112 ≤ 2^31 - 1.
/// The order differs from <see cref="DotKernels"/>'s, so the batch-invariant mode never takes this path.
/// </remarks>
internal static unsafe class Int8DotKernels
{
    /// <summary>
    /// Input elements per int16 scale, and the most an int32 lane may accumulate before it overflows (see
    /// the remarks). Rows up to this length (every hidden size in use) have a single scale.
    /// </summary>
    public const int ScaleBlock = 4096;

    /// <summary>Whether this machine runs the kernels (they are written with AVX2 instructions).</summary>
    public static bool IsSupported => Avx2.IsSupported;

    /// <summary>Scales a row of <paramref name="k"/> elements has, one per <see cref="ScaleBlock"/> elements.</summary>
    public static int Blocks(int k) => (k + ScaleBlock - 1) / ScaleBlock;

    /// <summary>
    /// x [k] → q [k] int16 and scales [Blocks(k)], x ≈ q · scale of its block, q = round(x / scale) with
    /// scale = max|x| / 32767 over the block. False (q unusable) if the row holds an infinity or NaN, which
    /// the float kernels then propagate as they would.
    /// </summary>
    public static bool QuantizeRow(float* x, int k, short* q, float* scales)
    {
        for (int b0 = 0, block = 0; b0 < k; b0 += ScaleBlock, block++)
        {
            int n = Math.Min(ScaleBlock, k - b0);
            float* xb = x + b0;
            Vector256<float> maxv = default, sumv = default;
            int i = 0;
            for (; i <= n - 8; i += 8)
            {
                var a = Vector256.Abs(Vector256.Load(xb + i));
                maxv = Avx.Max(maxv, a);
                sumv += a;
            }
            // vmaxps may drop a NaN; the sum of magnitudes keeps it (and any infinity).
            float max = 0, sum = Vector256.Sum(sumv);
            for (int l = 0; l < 8; l++)
                max = MathF.Max(max, maxv[l]);
            for (; i < n; i++)
            {
                max = MathF.Max(max, MathF.Abs(xb[i]));
                sum += MathF.Abs(xb[i]);
            }
            if (!float.IsFinite(max) || !float.IsFinite(sum))
                return false;
            float inv = max == 0 ? 0 : 32767f / max;
            scales[block] = max / 32767f;
            var invv = Vector256.Create(inv);
            short* qb = q + b0;
            i = 0;
            // cvtps2dq rounds to nearest even, as MathF.Round below; the saturating pack keeps ±32767 exact
            // and then restores element order (it packs within 128-bit lanes).
            for (; i <= n - 16; i += 16)
            {
                var lo = Avx.ConvertToVector256Int32(Vector256.Load(xb + i) * invv);
                var hi = Avx.ConvertToVector256Int32(Vector256.Load(xb + i + 8) * invv);
                Avx2.Permute4x64(Avx2.PackSignedSaturate(lo, hi).AsInt64(), 0b11_01_10_00).AsInt16().Store(qb + i);
            }
            for (; i < n; i++)
                qb[i] = (short)Math.Clamp(MathF.Round(xb[i] * inv), -32767f, 32767f);
        }
        return true;
    }

    /// <summary>
    /// One quantized input row against four consecutive int8 weight rows: the input load is shared by the
    /// four rows. sums[c] = Σ x·w of row c in input units (the weight scale is applied by the caller). The
    /// next four rows are prefetched at the rate this block is read, as <see cref="DotKernels.Dot1x4"/> does.
    /// </summary>
    public static void Dot1x4(short* x, float* xScales, byte* w, long wRowBytes, int k, float* sums)
    {
        sbyte* w0 = (sbyte*)w, w1 = w0 + wRowBytes, w2 = w1 + wRowBytes, w3 = w2 + wRowBytes;
        byte* next = (byte*)(w3 + wRowBytes);
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        int k16 = k & ~15;
        for (int b0 = 0, block = 0; b0 < k16; b0 += ScaleBlock, block++)
        {
            int end = Math.Min(b0 + ScaleBlock, k16);
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int i = b0; i < end; i += 16)
            {
                // 4 rows × 16 bytes consumed per step: one line of the next block.
                DotKernels.PrefetchNextBlock<I8Weights>(next, i);
                var xv = Vector256.Load(x + i);
                a0 = Avx2.Add(a0, MulAdd(xv, w0 + i));
                a1 = Avx2.Add(a1, MulAdd(xv, w1 + i));
                a2 = Avx2.Add(a2, MulAdd(xv, w2 + i));
                a3 = Avx2.Add(a3, MulAdd(xv, w3 + i));
            }
            var s = Vector256.Create(xScales[block]);
            f0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a0), s, f0);
            f1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a1), s, f1);
            f2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a2), s, f2);
            f3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a3), s, f3);
        }
        float s0 = DotKernels.HSum(f0), s1 = DotKernels.HSum(f1), s2 = DotKernels.HSum(f2), s3 = DotKernels.HSum(f3);
        if (k16 < k)
        {
            // The tail lies in one block (ScaleBlock is a multiple of 16); its int sums are tiny and exact.
            int t0 = 0, t1 = 0, t2 = 0, t3 = 0;
            for (int i = k16; i < k; i++)
            {
                int xi = x[i];
                t0 += xi * w0[i];
                t1 += xi * w1[i];
                t2 += xi * w2[i];
                t3 += xi * w3[i];
            }
            float scale = xScales[k16 / ScaleBlock];
            s0 = MathF.FusedMultiplyAdd(t0, scale, s0);
            s1 = MathF.FusedMultiplyAdd(t1, scale, s1);
            s2 = MathF.FusedMultiplyAdd(t2, scale, s2);
            s3 = MathF.FusedMultiplyAdd(t3, scale, s3);
        }
        sums[0] = s0;
        sums[1] = s1;
        sums[2] = s2;
        sums[3] = s3;
    }

    /// <summary>
    /// One element: quantized x [k] · int8 w row [k], in input units, the row read as one linear stream
    /// into four int32 accumulators (16-element group g into accumulator g mod 4 while whole 64-element
    /// steps last), prefetched <see cref="RowDotKernels.PrefetchBytes"/> ahead as the row GEMV does.
    /// </summary>
    public static float DotRow(short* x, float* xScales, byte* w, int k)
    {
        sbyte* wr = (sbyte*)w;
        var f = Vector256<float>.Zero;
        int k16 = k & ~15;
        for (int b0 = 0, block = 0; b0 < k16; b0 += ScaleBlock, block++)
        {
            int end = Math.Min(b0 + ScaleBlock, k16);
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
            int i = b0;
            for (; i <= end - 64; i += 64)
            {
                if (Sse.IsSupported)
                    Sse.Prefetch0(w + i + RowDotKernels.PrefetchBytes);
                a0 = Avx2.Add(a0, MulAdd(Vector256.Load(x + i), wr + i));
                a1 = Avx2.Add(a1, MulAdd(Vector256.Load(x + i + 16), wr + i + 16));
                a2 = Avx2.Add(a2, MulAdd(Vector256.Load(x + i + 32), wr + i + 32));
                a3 = Avx2.Add(a3, MulAdd(Vector256.Load(x + i + 48), wr + i + 48));
            }
            for (; i < end; i += 16)
                a0 = Avx2.Add(a0, MulAdd(Vector256.Load(x + i), wr + i));
            var sum4 = Avx2.Add(Avx2.Add(a0, a1), Avx2.Add(a2, a3));
            f = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum4), Vector256.Create(xScales[block]), f);
        }
        float sum = DotKernels.HSum(f);
        if (k16 < k)
        {
            int t = 0;
            for (int i = k16; i < k; i++)
                t += x[i] * wr[i];
            sum = MathF.FusedMultiplyAdd(t, xScales[k16 / ScaleBlock], sum);
        }
        return sum;
    }

    // 16 products in pairs: 8 int32 lanes of x[2l]·w[2l] + x[2l+1]·w[2l+1].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> MulAdd(Vector256<short> x, sbyte* w) => Avx2.MultiplyAddAdjacent(x, Avx2.ConvertToVector256Int16(w));
}
