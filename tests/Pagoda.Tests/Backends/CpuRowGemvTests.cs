using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The default mode's decode GEMV (one weight row streamed at a time, <see cref="RowDotKernels"/>): against
/// a double-precision reference for every weight dtype, with k below, at and past the 8- and 32-element
/// steps so every tail runs; its one- and two-row forms giving the same bits; and a row's result not
/// depending on how many decode rows share the op (the order differs only from the prefill GEMM's).
/// </summary>
public unsafe class CpuRowGemvTests
{
    public static TheoryData<DType, int> Sizes()
    {
        var data = new TheoryData<DType, int>();
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16, DType.I8 })
        {
            foreach (int k in new[] { 1, 7, 8, 13, 31, 32, 33, 45, 64, 71, 96, 200 })
                data.Add(dtype, k);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void RowKernelsMatchTheReferenceAndEachOther(DType dtype, int k)
    {
        const int rows = 5;
        using var backend = new CpuBackend();
        var (weight, source) = MakeWeight(backend, dtype, rows, k, new Random(k));
        var w = (CpuTensor)weight;
        var xs = new float[k];
        var rng = new Random(k + 1);
        for (int i = 0; i < k; i++)
            xs[i] = (float)(rng.NextDouble() * 2 - 1);
        float* sums = stackalloc float[2];
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
                if (j + 1 < rows)
                {
                    Dot2(dtype, x, w.Pointer + j * w.RowBytes, w.RowBytes, k, sums);
                    Assert.Equal(BitConverter.SingleToInt32Bits(one), BitConverter.SingleToInt32Bits(sums[0]));
                    Assert.Equal(BitConverter.SingleToInt32Bits(Dot(dtype, x, w.Pointer + (j + 1) * w.RowBytes, k)),
                        BitConverter.SingleToInt32Bits(sums[1]));
                }
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
    public void DecodeRowsDoNotDependOnEachOtherInTheDefaultMode(DType dtype, int inDim, int outDim)
    {
        using var backend = new CpuBackend();
        Assert.False(backend.BatchInvariant);
        var rng = new Random(inDim);
        var (weight, source) = MakeWeight(backend, dtype, outDim, inDim, rng);
        int n = Gemm.RowGemvMaxRows - 1;
        using var x = CpuTensor.Allocate([n, inDim]);
        foreach (ref float v in x.F32)
            v = (float)(rng.NextDouble() * 2 - 1);
        using var dst = CpuTensor.Allocate([n, outDim]);
        backend.Linear(x, weight, null, dst);
        for (int r = 0; r < n; r++)
        {
            using var one = CpuTensor.Allocate([1, inDim]);
            x.Row(r).CopyTo(one.Row(0));
            using var alone = CpuTensor.Allocate([1, outDim]);
            backend.Linear(one, weight, null, alone);
            Assert.Equal(dst.Row(r).ToArray(), alone.Row(0).ToArray());
            // And the one-row GEMV is the kernel tested above, column by column.
            fixed (float* xr = x.Row(r))
            {
                var w = (CpuTensor)weight;
                for (int j = 0; j < outDim; j++)
                {
                    float expected = Dot(dtype, xr, w.Pointer + j * w.RowBytes, inDim) * (dtype == DType.I8 ? w.Scales[j] : 1);
                    Assert.Equal(expected, alone.Row(0)[j]);
                }
            }
        }
        if (weight != source)
            weight.Dispose();
        source.Dispose();
    }

    private static (Tensor Weight, CpuTensor Source) MakeWeight(CpuBackend backend, DType dtype, int rows, int k, Random rng)
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

    private static void Dot2(DType dtype, float* x, byte* w, long rowBytes, int k, float* sums)
    {
        switch (dtype)
        {
            case DType.F32: RowDotKernels.Dot2Rows<F32Weights>(x, w, rowBytes, k, sums); break;
            case DType.BF16: RowDotKernels.Dot2Rows<Bf16Weights>(x, w, rowBytes, k, sums); break;
            case DType.F16: RowDotKernels.Dot2Rows<F16Weights>(x, w, rowBytes, k, sums); break;
            default: RowDotKernels.Dot2Rows<I8Weights>(x, w, rowBytes, k, sums); break;
        }
    }
}
