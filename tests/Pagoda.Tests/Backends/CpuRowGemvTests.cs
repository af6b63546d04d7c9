using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The default mode's decode GEMV (one weight row streamed at a time, <see cref="RowDotKernels"/>): against
/// a double-precision reference for every weight dtype, with k below, at and past the 8-, 32- and
/// 64-element steps so every loop and tail runs; and single-row Linear ops taking it (16/32-bit weights)
/// or the 4-row kernel (int8, which measured faster that way).
/// </summary>
public unsafe class CpuRowGemvTests
{
    public static TheoryData<DType, int> Sizes()
    {
        var data = new TheoryData<DType, int>();
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16, DType.I8 })
        {
            foreach (int k in new[] { 1, 7, 8, 13, 31, 32, 33, 45, 63, 64, 65, 71, 96, 100, 127, 129, 200 })
                data.Add(dtype, k);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void RowKernelMatchesTheReference(DType dtype, int k)
    {
        const int rows = 5;
        using var backend = new CpuBackend();
        var (weight, source) = MakeWeight(backend, dtype, rows, k, new Random(k));
        var w = (CpuTensor)weight;
        var xs = new float[k];
        var rng = new Random(k + 1);
        for (int i = 0; i < k; i++)
            xs[i] = (float)(rng.NextDouble() * 2 - 1);
        fixed (float* x = xs)
        {
            for (int j = 0; j < rows; j++)
            {
                float one = Dot(dtype, x, w.Pointer + j * w.RowBytes, k);
                double reference = 0, magnitude = 0;
                for (int i = 0; i < k; i++)
                {
                    double term = xs[i] * CpuKernelTests.Widened(w, j, i);
                    reference += term;
                    magnitude += Math.Abs(term);
                }
                // The kernels return the dot before the int8 scale; the reference includes it. The bound is
                // float32 summation's worst case, k rounding steps of the sum of magnitudes.
                double scale = dtype == DType.I8 ? w.Scales[j] : 1;
                Assert.True(Math.Abs(one * scale - reference) <= (k + 2) * 6e-8 * magnitude + 1e-12,
                    $"{dtype} k {k} row {j}: {one * scale} vs {reference}");
            }
        }
        if (weight != source)
            weight.Dispose();
        source.Dispose();
    }

    [Theory]
    [InlineData(DType.F32, 45, 67)]
    [InlineData(DType.BF16, 896, 130)]
    [InlineData(DType.F16, 29, 131)]
    [InlineData(DType.I8, 97, 65)]
    public void DefaultSingleRowLinearTakesTheFastestKernel(DType dtype, int inDim, int outDim)
    {
        using var backend = new CpuBackend();
        Assert.False(backend.Options.BatchInvariant);
        using var invariant = new CpuBackend(new BackendOptions { BatchInvariant = true });
        var rng = new Random(inDim);
        var (weight, source) = MakeWeight(backend, dtype, outDim, inDim, rng);
        using var x = CpuTensor.Allocate([1, inDim]);
        foreach (ref float v in x.F32)
            v = (float)(rng.NextDouble() * 2 - 1);
        using var bias = CpuTensor.Allocate([outDim]);
        foreach (ref float v in bias.F32)
            v = (float)rng.NextDouble();
        using var dst = CpuTensor.Allocate([1, outDim]);
        backend.Linear(x, weight, bias, dst);
        using var expected = CpuTensor.Allocate([1, outDim]);
        if (dtype == DType.I8)
            invariant.Linear(x, weight, bias, expected);
        else
        {
            var w = (CpuTensor)weight;
            fixed (float* xr = x.Row(0))
            {
                for (int j = 0; j < outDim; j++)
                    expected.Row(0)[j] = Dot(dtype, xr, w.Pointer + j * w.RowBytes, inDim) + bias.F32[j];
            }
        }
        Assert.Equal(expected.Row(0).ToArray(), dst.Row(0).ToArray());
        if (weight != source)
            weight.Dispose();
        source.Dispose();
    }

    // Random weights of dtype (int8 quantized at load, 16-bit narrowed), with tiny values so half subnormals are widened.
    internal static (Tensor Weight, CpuTensor Source) MakeWeight(CpuBackend backend, DType dtype, int rows, int k, Random rng)
    {
        var source = CpuTensor.Allocate([rows, k]);
        foreach (ref float v in source.F32)
            v = (float)(rng.NextDouble() * 2 - 1);
        // Tiny values too, so half subnormals are widened.
        for (int i = 0; i < k; i += 3)
            source.Row(0)[i] *= 1e-6f;
        Tensor weight = dtype switch
        {
            DType.I8 => backend.QuantizeInt8(source),
            DType.F32 => source,
            _ => CpuKernelTests.Narrow(source, dtype),
        };
        return (weight, source);
    }

    private static float Dot(DType dtype, float* x, byte* w, int k) => dtype switch
    {
        DType.F32 => RowDotKernels.DotRow<F32Weights>(x, w, k),
        DType.BF16 => RowDotKernels.DotRow<Bf16Weights>(x, w, k),
        DType.F16 => RowDotKernels.DotRow<F16Weights>(x, w, k),
        _ => RowDotKernels.DotRow<I8Weights>(x, w, k),
    };
}
