using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The int8 <see cref="RowQuads"/> layout: where each element lands, which shapes take it, and that Linear
/// over it gives the same bits as over the same weights row-major, in the GEMV and the panel GEMM, with
/// 8- and 16-lane kernels, alone and as a part of a stacked weight.
/// </summary>
public unsafe class RowQuadsTests
{
    [Fact]
    public void ElementsOfAGroupInterleaveBySixteen()
    {
        Assert.Equal(0, RowQuads.Offset(0, 0, 32));
        Assert.Equal(16, RowQuads.Offset(1, 0, 32));
        Assert.Equal(63, RowQuads.Offset(3, 15, 32));
        Assert.Equal(64, RowQuads.Offset(0, 16, 32));
        Assert.Equal(127, RowQuads.Offset(3, 31, 32));
        Assert.Equal(128, RowQuads.Offset(4, 0, 32));
        Assert.True(RowQuads.Fits(8, 896));
        Assert.False(RowQuads.Fits(6, 896));
        Assert.False(RowQuads.Fits(8, 900));
    }

    [Fact]
    public void QuantizedWeightsReadTheSameInEitherLayout()
    {
        using var backend = new CpuBackend();
        using var source = Random([12, 48], 3);
        using var quads = (CpuTensor)backend.QuantizeInt8(source);
        Assert.True(quads.InRowQuads);
        using var rowMajor = RowMajorCopy(quads);
        for (int r = 0; r < 12; r++)
        {
            for (int c = 0; c < 48; c++)
            {
                Assert.Equal(rowMajor.Int8At(r, c), quads.Int8At(r, c));
                Assert.Equal(((sbyte*)rowMajor.Pointer)[r * 48 + c], quads.Int8At(r, c));
            }
        }
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(7, true)]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(7, false)]
    public void LinearGivesTheSameBitsAsRowMajor(int n, bool wide)
    {
        foreach (bool batchInvariant in new[] { false, true })
        {
            using var backend = new CpuBackend(new BackendOptions { BatchInvariant = batchInvariant, CpuVector512 = wide });
            using var source = Random([136, 160], n);
            using var quads = (CpuTensor)backend.QuantizeInt8(source);
            using var rowMajor = RowMajorCopy(quads);
            using var x = Random([n, 160], n + 100);
            using var a = CpuTensor.Allocate([n, 136]);
            using var b = CpuTensor.Allocate([n, 136]);
            backend.Linear(x, quads, null, a);
            backend.Linear(x, rowMajor, null, b);
            Assert.Equal(b.F32.ToArray(), a.F32.ToArray());

            // Stacked: a row-quads part beside a row-major one (6 rows do not fill groups of four).
            using var small = (CpuTensor)backend.QuantizeInt8(Random([6, 160], n + 7));
            Assert.False(small.InRowQuads);
            var stacked = CpuTensor.StackView([quads, small]);
            var stackedRowMajor = CpuTensor.StackView([rowMajor, small]);
            using var c = CpuTensor.Allocate([n, 142]);
            using var d = CpuTensor.Allocate([n, 142]);
            backend.Linear(x, stacked, null, c);
            backend.Linear(x, stackedRowMajor, null, d);
            Assert.Equal(d.F32.ToArray(), c.F32.ToArray());
            Assert.Equal(a.F32.ToArray(), Enumerable.Range(0, n).SelectMany(r => c.Row(r)[..136].ToArray()).ToArray());
        }
    }

    private static CpuTensor Random(int[] shape, int seed)
    {
        var t = CpuTensor.Allocate(shape);
        var rng = new Random(seed);
        foreach (ref float v in t.F32)
            v = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }

    private static CpuTensor RowMajorCopy(CpuTensor quads)
    {
        var t = CpuTensor.AllocateInt8(quads.Shape, rowQuads: false);
        Assert.False(t.InRowQuads);
        for (int r = 0; r < quads.Rows; r++)
        {
            t.Scales[r] = quads.Scales[r];
            for (int c = 0; c < quads.Cols; c++)
                ((sbyte*)t.Pointer)[(long)r * quads.Cols + c] = quads.Int8At(r, c);
        }
        return t;
    }
}
