using System.Runtime.Intrinsics;
using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>The kernels' own e^x: within 2 ulp of the exact value over float's normal range, and its edges.</summary>
public class VecExpTests
{
    [Fact]
    public void IsWithinTwoUlpOfTheExactValue()
    {
        var rng = new Random(3);
        int worst = 0;
        float worstAt = 0;
        var xs = new float[8];
        for (int i = 0; i < 400_000; i++)
        {
            for (int j = 0; j < 8; j++)
                xs[j] = i < 1000 ? (i * 8 + j - 4000) / 1000f : (float)(rng.NextDouble() * 176 - 87.3);
            var e = VecExp.Exp(Vector256.Create(xs));
            for (int j = 0; j < 8; j++)
            {
                float exact = (float)Math.Exp(xs[j]);
                int ulps = Math.Abs(BitConverter.SingleToInt32Bits(e[j]) - BitConverter.SingleToInt32Bits(exact));
                if (ulps > worst)
                    (worst, worstAt) = (ulps, xs[j]);
                Assert.Equal(BitConverter.SingleToInt32Bits(e[j]), BitConverter.SingleToInt32Bits(VecExp.Exp(xs[j])));
            }
        }
        Assert.True(worst <= 2, $"{worst} ulp at x = {worstAt:R}");
    }

    [Fact]
    public void EdgesAreZeroOneInfinityAndNaN()
    {
        Assert.Equal(1f, VecExp.Exp(0f));
        Assert.Equal(0f, VecExp.Exp(float.NegativeInfinity));
        Assert.Equal(0f, VecExp.Exp(-100f));
        Assert.Equal(float.PositiveInfinity, VecExp.Exp(float.PositiveInfinity));
        Assert.Equal(float.PositiveInfinity, VecExp.Exp(89f));
        Assert.True(float.IsNaN(VecExp.Exp(float.NaN)));
        Assert.True(float.IsNormal(VecExp.Exp(-87.3f)) && float.IsFinite(VecExp.Exp(88.7f)));
        Assert.Equal((float)Math.Exp(1), VecExp.Exp(1f), 6);
    }
}
