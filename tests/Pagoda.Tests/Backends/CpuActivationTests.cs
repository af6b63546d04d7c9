using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The CPU backend's GELU-tanh · mul (Gemma's GeGLU) against PyTorch's gelu(approximate="tanh") formula in double,
/// over whole 8-lane groups and a scalar tail, in place and into another tensor; and its Scale.
/// </summary>
public class CpuActivationTests
{
    // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), as torch writes it.
    private static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    [Theory]
    [InlineData(1, 8)]
    [InlineData(3, 37)]     // four 8-lane groups and a tail of five
    [InlineData(700, 45)]   // large enough to be split across the worker pool
    public void GeluTanhMulMatchesTheScalarFormula(int rows, int cols)
    {
        var rng = new Random(rows * 100 + cols);
        using var backend = new CpuBackend();
        using var gate = CpuTensor.Allocate([rows, cols]);
        using var up = CpuTensor.Allocate([rows, cols]);
        var g = gate.F32;
        for (int i = 0; i < g.Length; i++)
            g[i] = (float)(rng.NextDouble() * 12 - 6);
        // The far tails, where tanh saturates (and e^(-2u) overflows to infinity on the negative side).
        g[0] = -60f;
        g[^1] = 60f;
        foreach (ref float v in up.F32)
            v = (float)(rng.NextDouble() * 4 - 2);
        var gateCopy = gate.F32.ToArray();

        using var dst = CpuTensor.Allocate([rows, cols]);
        backend.GeluTanhMul(gate, up, dst);
        for (int i = 0; i < g.Length; i++)
        {
            double expected = GeluTanh(gateCopy[i]) * up.F32[i];
            float actual = dst.F32[i];
            Assert.True(Math.Abs(actual - expected) <= 1e-6 * Math.Abs(expected) + 1e-7, $"element {i} (x = {gateCopy[i]}): {actual} vs {expected}");
        }

        // dst aliasing gate, as the model calls it: the same values.
        backend.GeluTanhMul(gate, up, gate);
        Assert.Equal(dst.F32.ToArray(), gate.F32.ToArray());
    }

    [Fact]
    public void GeluTanhOfOneValueIsTheScalarFormula()
    {
        foreach (float x in new[] { -8f, -3f, -1f, -0.25f, 0f, 0.5f, 1f, 2.5f, 10f })
            Assert.Equal(GeluTanh(x), Activation.GeluTanh(x), 1e-6);
        Assert.Equal(0f, Activation.GeluTanh(-100f));
        Assert.Equal(100f, Activation.GeluTanh(100f));
    }

    [Fact]
    public void ScaleMultipliesEveryElementInPlace()
    {
        using var backend = new CpuBackend();
        using var x = CpuTensor.Allocate([3, 13]);
        var rng = new Random(7);
        foreach (ref float v in x.F32)
            v = (float)(rng.NextDouble() * 2 - 1);
        var before = x.F32.ToArray();
        float factor = MathF.Sqrt(128);
        backend.Scale(x, factor);
        Assert.Equal(before.Select(v => v * factor).ToArray(), x.F32.ToArray());
    }
}
