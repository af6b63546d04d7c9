using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The default mode's int8 decode GEMV with int16 inputs (<see cref="Int8DotKernels"/>): the input
/// quantization's rounding bound, both kernels against a double-precision reference over the same
/// quantized input (k below, at and past the 16- and 64-element steps and the scale block, so every loop
/// and tail runs), the int32 worst case, and Linear ops of 1-3 rows over plain and stacked weights.
/// </summary>
public unsafe class CpuInt8GemvTests
{
    private static readonly int[] Lengths =
        [1, 7, 15, 16, 17, 31, 48, 63, 64, 65, 100, 129, 200, Int8DotKernels.ScaleBlock - 16, Int8DotKernels.ScaleBlock,
         Int8DotKernels.ScaleBlock + 13, Int8DotKernels.ScaleBlock + 80, 8960, 8960 + 5];

    public static TheoryData<int> Sizes() => [.. Lengths];

    [Avx2Theory]
    [MemberData(nameof(Sizes))]
    public void QuantizedInputErrsByAtMostHalfAStep(int k)
    {
        var xs = RandomInput(k, new Random(k));
        var q = new short[k];
        var scales = new float[Int8DotKernels.Blocks(k)];
        fixed (float* x = xs)
        fixed (short* qp = q)
        fixed (float* sp = scales)
            Assert.True(Int8DotKernels.QuantizeRow(x, k, qp, sp));
        for (int b = 0; b < scales.Length; b++)
        {
            var block = Enumerable.Range(b * Int8DotKernels.ScaleBlock, Math.Min(Int8DotKernels.ScaleBlock, k - b * Int8DotKernels.ScaleBlock));
            float max = block.Max(i => MathF.Abs(xs[i]));
            Assert.Equal(max / 32767f, scales[b]);
            // The largest element lands on ±32767 exactly; every other one within half a step, plus the float
            // rounding of x · (32767 / max), a few units in 2^-24 of 32767 steps.
            Assert.Equal(32767, block.Max(i => Math.Abs((int)q[i])));
            foreach (int i in block)
                Assert.True(Math.Abs(xs[i] - (double)q[i] * scales[b]) <= scales[b] * (0.5 + 0.01), $"k {k} element {i}: {xs[i]} vs {q[i]} · {scales[b]}");
        }
    }

    [Avx2Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void NonFiniteInputsAreNotQuantized(float bad)
    {
        foreach (int at in new[] { 0, 5, 37 })
        {
            var xs = RandomInput(40, new Random(at));
            xs[at] = bad;
            var q = new short[40];
            float scale;
            fixed (float* x = xs)
            fixed (short* qp = q)
                Assert.False(Int8DotKernels.QuantizeRow(x, 40, qp, &scale));
        }
    }

    [Avx2Fact]
    public void ZeroInputQuantizesToZero()
    {
        var xs = new float[33];
        var q = Enumerable.Repeat((short)1, 33).ToArray();
        float scale = -1;
        fixed (float* x = xs)
        fixed (short* qp = q)
            Assert.True(Int8DotKernels.QuantizeRow(x, 33, qp, &scale));
        Assert.Equal(0, scale);
        Assert.All(q, v => Assert.Equal(0, v));
    }

    [Avx2Theory]
    [MemberData(nameof(Sizes))]
    public void KernelsMatchTheReferenceOverTheQuantizedInput(int k)
    {
        const int rows = 5;
        var rng = new Random(k + 3);
        var w = new sbyte[rows * k + 64];
        for (int i = 0; i < w.Length; i++)
            w[i] = (sbyte)rng.Next(-127, 128);
        var xs = RandomInput(k, rng);
        var q = new short[k];
        var scales = new float[Int8DotKernels.Blocks(k)];
        var sums = new float[4];
        fixed (float* x = xs)
        fixed (short* qp = q)
        fixed (float* sp = scales)
        fixed (sbyte* wp = w)
        fixed (float* s4 = sums)
        {
            Assert.True(Int8DotKernels.QuantizeRow(x, k, qp, sp));
            Int8DotKernels.Dot1x4(qp, sp, (byte*)wp, k, k, s4);
            for (int j = 0; j < rows; j++)
            {
                double reference = 0, magnitude = 0;
                for (int i = 0; i < k; i++)
                {
                    double term = (double)q[i] * wp[j * k + i] * scales[i / Int8DotKernels.ScaleBlock];
                    reference += term;
                    magnitude += Math.Abs(term);
                }
                // Within a block the int32 sums are exact; each lane's conversion to float, the per-block
                // accumulation, the lane sum and the tail round once each, relative to the magnitudes.
                double bound = (scales.Length + 6) * 6e-8 * magnitude + 1e-12;
                float row = Int8DotKernels.DotRow(qp, sp, (byte*)(wp + j * k), k);
                Assert.True(Math.Abs(row - reference) <= bound, $"row kernel k {k} row {j}: {row} vs {reference}");
                if (j < 4)
                    Assert.True(Math.Abs(sums[j] - reference) <= bound, $"4-row kernel k {k} row {j}: {sums[j]} vs {reference}");
            }
        }
    }

    // The most an int32 lane can hold: every product at its largest, over a whole scale block and past it.
    [Avx2Theory]
    [InlineData(Int8DotKernels.ScaleBlock, 127, 1f)]
    [InlineData(Int8DotKernels.ScaleBlock, 127, -1f)]
    [InlineData(Int8DotKernels.ScaleBlock, -128, -1f)]
    [InlineData(8960, 127, 1f)]
    [InlineData(8960, -128, -1f)]
    [InlineData(8960 + 11, -128, 1f)]
    public void WorstCaseSumsDoNotOverflow(int k, int weight, float input)
    {
        var w = Enumerable.Repeat((sbyte)weight, 4 * k).ToArray();
        var xs = Enumerable.Repeat(input * 3.5f, k).ToArray();
        var q = new short[k];
        var scales = new float[Int8DotKernels.Blocks(k)];
        var sums = new float[4];
        fixed (float* x = xs)
        fixed (short* qp = q)
        fixed (float* sp = scales)
        fixed (sbyte* wp = w)
        fixed (float* s4 = sums)
        {
            Assert.True(Int8DotKernels.QuantizeRow(x, k, qp, sp));
            Assert.All(q, v => Assert.Equal(input > 0 ? 32767 : -32767, v));
            Int8DotKernels.Dot1x4(qp, sp, (byte*)wp, k, k, s4);
            double expected = (double)k * input * 3.5 * weight;
            foreach (float s in sums.Append(Int8DotKernels.DotRow(qp, sp, (byte*)wp, k)))
                Assert.True(Math.Abs(s - expected) <= 1e-5 * Math.Abs(expected), $"k {k}: {s} vs {expected}");
        }
    }

    // Linear of 1-3 rows in the default mode takes the int16 kernels: within the input rounding's bound of
    // the float reference, and equal bitwise to the kernels called directly (4-column groups by Dot1x4, a
    // chunk's last 1-3 columns by DotRow). outDim 69 = one 64-column chunk + 5 columns; stacked 37 + 32.
    [Avx2Theory]
    [InlineData(1, 97, false)]
    [InlineData(2, 64, false)]
    [InlineData(3, 4103, false)]
    [InlineData(1, 200, true)]
    [InlineData(3, 45, true)]
    public void SmallBatchLinearTakesTheInt16Kernels(int n, int inDim, bool stacked)
    {
        using var backend = new CpuBackend();
        var rng = new Random(n * 100 + inDim);
        int[] partRows = stacked ? [37, 32] : [69];
        var parts = new List<CpuTensor>();
        foreach (int rows in partRows)
            parts.Add((CpuTensor)backend.QuantizeInt8(CpuRowGemvTests.MakeWeight(backend, DType.F32, rows, inDim, rng).Source));
        var weight = stacked ? CpuTensor.StackView([.. parts]) : parts[0];
        int outDim = partRows.Sum();
        using var x = CpuTensor.Allocate([n, inDim]);
        foreach (ref float v in x.F32)
            v = (float)(rng.NextDouble() * 8 - 4);
        using var bias = CpuTensor.Allocate([outDim]);
        foreach (ref float v in bias.F32)
            v = (float)rng.NextDouble();
        using var dst = CpuTensor.Allocate([n, outDim]);
        backend.Linear(x, weight, bias, dst);

        var q = new short[inDim];
        var scales = new float[Int8DotKernels.Blocks(inDim)];
        var sums = new float[4];
        for (int r = 0; r < n; r++)
        {
            fixed (float* xr = x.Row(r))
            fixed (short* qp = q)
            fixed (float* sp = scales)
            fixed (float* s4 = sums)
            {
                Assert.True(Int8DotKernels.QuantizeRow(xr, inDim, qp, sp));
                int col0 = 0;
                foreach (var part in parts)
                {
                    for (int j = 0; j < part.Rows; j++)
                    {
                        byte* wr = part.Pointer + j * part.RowBytes;
                        int group = j / 4 * 4, chunkEnd = Math.Min(part.Rows, (j / 64 + 1) * 64);
                        float dot;
                        if (group + 4 <= chunkEnd)
                        {
                            Int8DotKernels.Dot1x4(qp, sp, part.Pointer + group * part.RowBytes, part.RowBytes, inDim, s4);
                            dot = sums[j - group];
                        }
                        else
                            dot = Int8DotKernels.DotRow(qp, sp, wr, inDim);
                        Assert.Equal(dot * part.Scales[j] + bias.F32[col0 + j], dst.Row(r)[col0 + j]);

                        // The float reference: off by at most the input rounding, half a step per element.
                        double reference = bias.F32[col0 + j], bound = 0;
                        for (int i = 0; i < inDim; i++)
                        {
                            double wi = ((sbyte*)wr)[i] * (double)part.Scales[j];
                            reference += x.Row(r)[i] * wi;
                            bound += Math.Abs(wi) * scales[i / Int8DotKernels.ScaleBlock] * 0.5;
                        }
                        Assert.True(Math.Abs(dst.Row(r)[col0 + j] - reference) <= bound * 1.001 + 1e-5, $"row {r} col {col0 + j}: {dst.Row(r)[col0 + j]} vs {reference}");
                    }
                    col0 += part.Rows;
                }
            }
        }
        foreach (var part in parts)
            part.Dispose();
    }

    private static float[] RandomInput(int k, Random rng)
    {
        var xs = new float[k];
        for (int i = 0; i < k; i++)
            xs[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 17 == 3 ? 40 : 1);   // a few outliers, as activations have
        return xs;
    }
}

/// <summary>A fact that needs the AVX2 kernels of <see cref="Int8DotKernels"/>.</summary>
public sealed class Avx2FactAttribute : FactAttribute
{
    public Avx2FactAttribute()
    {
        if (!Int8DotKernels.IsSupported)
            Skip = "no AVX2";
    }
}

/// <summary>A theory that needs the AVX2 kernels of <see cref="Int8DotKernels"/>.</summary>
public sealed class Avx2TheoryAttribute : TheoryAttribute
{
    public Avx2TheoryAttribute()
    {
        if (!Int8DotKernels.IsSupported)
            Skip = "no AVX2";
    }
}
