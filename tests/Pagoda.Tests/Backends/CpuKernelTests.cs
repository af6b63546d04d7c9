using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The CPU Linear kernels against a double-precision reference for every weight dtype, and the
/// batch-invariance contract of a backend made with BatchInvariant = true: a row's output is
/// bit-identical whether it runs alone (GEMV) or among many rows (panel GEMM).
/// </summary>
public unsafe class CpuKernelTests
{
    // Batch invariant: both paths match the reference and give the same bits. The default backend: both paths
    // still match the reference; only the bit equality is not promised.
    [Theory]
    [InlineData(DType.F32, 1, 37, 45, true)]
    [InlineData(DType.BF16, 3, 64, 70, true)]
    [InlineData(DType.F16, 9, 29, 131, true)]
    [InlineData(DType.I8, 17, 96, 40, true)]
    [InlineData(DType.BF16, 13, 80, 33, true)]    // 8-row tiles (AVX-512), a 4-row one, a single row
    [InlineData(DType.F32, 1, 37, 45, false)]
    [InlineData(DType.BF16, 3, 64, 70, false)]
    [InlineData(DType.F16, 9, 29, 131, false)]
    [InlineData(DType.I8, 17, 96, 40, false)]
    public void LinearMatchesReferenceAloneAndBatched(DType dtype, int n, int inDim, int outDim, bool batchInvariant) =>
        CheckLinear(dtype, n, inDim, outDim, batchInvariant);

    internal static void CheckLinear(DType dtype, int n, int inDim, int outDim, bool batchInvariant, bool? wide = null)
    {
        var rng = new Random(n * 1000 + inDim);
        using var backend = new CpuBackend(new BackendOptions { BatchInvariant = batchInvariant, CpuVector512 = wide });
        var (weight, source) = CpuRowGemvTests.MakeWeight(backend, dtype, outDim, inDim, rng);
        using var bias = CpuTensor.Allocate([outDim]);
        foreach (ref float v in bias.F32)
            v = (float)rng.NextDouble();
        using var x = CpuTensor.Allocate([n, inDim]);
        foreach (ref float v in x.F32)
            v = (float)(rng.NextDouble() * 2 - 1);

        using var dst = CpuTensor.Allocate([n, outDim]);
        backend.Linear(x, weight, bias, dst);

        var w = (CpuTensor)weight;
        for (int r = 0; r < n; r++)
        {
            // Reference: the weights as the kernel sees them (widened, dequantized), summed in double.
            for (int j = 0; j < outDim; j++)
            {
                double s = 0;
                for (int k = 0; k < inDim; k++)
                    s += (double)x.Row(r)[k] * Widened(w, j, k);
                Assert.True(Math.Abs(s + bias.F32[j] - dst.Row(r)[j]) < 1e-4, $"row {r} col {j}: {s + bias.F32[j]} vs {dst.Row(r)[j]}");
            }
            // The same row alone takes the GEMV path: the same bits when batch invariant, else close.
            using var one = CpuTensor.Allocate([1, inDim]);
            x.Row(r).CopyTo(one.Row(0));
            using var alone = CpuTensor.Allocate([1, outDim]);
            backend.Linear(one, weight, bias, alone);
            if (batchInvariant)
                Assert.Equal(dst.Row(r).ToArray(), alone.Row(0).ToArray());
            else
            {
                for (int j = 0; j < outDim; j++)
                    Assert.True(Math.Abs(dst.Row(r)[j] - alone.Row(0)[j]) < 1e-4, $"row {r} col {j} alone: {alone.Row(0)[j]} vs {dst.Row(r)[j]}");
            }
        }
        if (weight != source)
            weight.Dispose();
        source.Dispose();
    }

    [Fact]
    public void Int8KeepsEachRowsLargestWeightAndErrsByHalfAStep()
    {
        using var backend = new CpuBackend();
        using var source = CpuTensor.Allocate([3, 50]);
        var rng = new Random(5);
        foreach (ref float v in source.F32)
            v = (float)(rng.NextDouble() * 4 - 2);
        using var q = (CpuTensor)backend.QuantizeInt8(source);
        for (int r = 0; r < 3; r++)
        {
            float max = source.Row(r).ToArray().Max(MathF.Abs);
            Assert.Equal(max / 127f, q.Scales[r]);
            for (int k = 0; k < 50; k++)
                Assert.True(Math.Abs(Widened(q, r, k) - source.Row(r)[k]) <= q.Scales[r] / 2 + 1e-6);
        }
    }

    internal static CpuTensor Narrow(CpuTensor source, DType dtype)
    {
        // A borrowed tensor over a buffer that lives as long as the test process (tests are short).
        var bytes = (ushort*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(source.NumElements * 2), 64);
        var f = source.F32;
        for (int i = 0; i < f.Length; i++)
            bytes[i] = dtype == DType.BF16 ? (ushort)(BitConverter.SingleToUInt32Bits(f[i]) >> 16) : BitConverter.HalfToUInt16Bits((Half)f[i]);
        return CpuTensor.Borrow(dtype, source.Shape, (byte*)bytes);
    }

    internal static double Widened(CpuTensor w, int row, int k)
    {
        long i = (long)row * w.Cols + k;
        return w.DType switch
        {
            DType.F32 => ((float*)w.Pointer)[i],
            DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)w.Pointer)[i] << 16),
            DType.F16 => (float)((Half*)w.Pointer)[i],
            _ => w.Int8At(row, k) * (double)w.Scales[row],
        };
    }
}

public class CpuKernel512Tests
{
    [Theory]
    [InlineData(DType.F32, 1, 37, 45)]
    [InlineData(DType.BF16, 5, 64, 70)]
    [InlineData(DType.F16, 9, 29, 131)]
    [InlineData(DType.I8, 17, 96, 40)]
    [InlineData(DType.F32, 13, 35, 31)]
    public void BatchInvariantWideKernelsMatchReferenceAndAreBatchInvariant(DType dtype, int n, int inDim, int outDim)
    {
        CpuKernelTests.CheckLinear(dtype, n, inDim, outDim, batchInvariant: true, wide: true);
    }
}
