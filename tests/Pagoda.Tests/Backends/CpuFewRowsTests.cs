using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The default mode's GEMV for a few input rows (<see cref="FewRowsKernels"/>: a small decode batch, or one request's
/// speculative drafts): Linear over 2 to 9 rows, every weight dtype, 16- and 8-lane kernels, k and output widths that
/// leave vector and column tails, against a double-precision reference within float32's summation bound.
/// </summary>
public unsafe class CpuFewRowsTests
{
    public static TheoryData<DType, int, bool> Cases()
    {
        var data = new TheoryData<DType, int, bool>();
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16, DType.I8 })
        {
            foreach (int n in new[] { 2, 3, 4, 5, 7, 8, 9 })
            {
                data.Add(dtype, n, true);
                data.Add(dtype, n, false);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FewRowsLinearMatchesTheReference(DType dtype, int n, bool vector512)
    {
        if (vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            return;
        using var backend = new CpuBackend(new BackendOptions { CpuVector512 = vector512 });
        foreach (var (inDim, outDim) in new[] { (45, 67), (256, 130), (33, 9) })
        {
            var rng = new Random(inDim * 31 + n);
            var (weight, source) = CpuRowGemvTests.MakeWeight(backend, dtype, outDim, inDim, rng);
            using var x = CpuTensor.Allocate([n, inDim]);
            foreach (ref float v in x.F32)
                v = (float)(rng.NextDouble() * 2 - 1);
            using var bias = CpuTensor.Allocate([outDim]);
            foreach (ref float v in bias.F32)
                v = (float)rng.NextDouble();
            using var dst = CpuTensor.Allocate([n, outDim]);
            backend.Linear(x, weight, bias, dst);
            var w = (CpuTensor)weight;
            for (int r = 0; r < n; r++)
            {
                for (int j = 0; j < outDim; j++)
                {
                    double reference = bias.F32[j], magnitude = Math.Abs(bias.F32[j]);
                    for (int i = 0; i < inDim; i++)
                    {
                        double term = x.Row(r)[i] * CpuKernelTests.Widened(w, j, i);
                        reference += term;
                        magnitude += Math.Abs(term);
                    }
                    Assert.True(Math.Abs(dst.Row(r)[j] - reference) <= (inDim + 4) * 6e-8 * magnitude + 1e-12,
                        $"{dtype} {n} rows [{outDim}, {inDim}] row {r} column {j}: {dst.Row(r)[j]} vs {reference}");
                }
            }
            if (weight != source)
                weight.Dispose();
            source.Dispose();
        }
    }
}
