using Pagoda.Sampling;

namespace Pagoda.Tests.Sampling;

/// <summary>The sampler's filters and draws, checked against probabilities computed here by hand.</summary>
public class SamplerTests
{
    private static readonly float[] Logits = [1.0f, 3.0f, 2.5f, -1.0f, 0.5f, 2.9f];

    /// <summary>softmax(logits / t) restricted to <paramref name="kept"/> and renormalised.</summary>
    private static double[] Expected(double t, params int[] kept)
    {
        var w = Logits.Select((l, i) => kept.Contains(i) ? Math.Exp(l / t) : 0).ToArray();
        double sum = w.Sum();
        return w.Select(x => x / sum).ToArray();
    }

    /// <summary>Draws many samples and checks each token's frequency within five standard errors.</summary>
    private static void AssertDistribution(SamplingParams p, double[] expected, int draws = 20000)
    {
        var rng = new Random(1234);
        var counts = new int[expected.Length];
        for (int i = 0; i < draws; i++)
            counts[Sampler.Sample(Logits, p, rng.NextDouble())]++;
        for (int i = 0; i < expected.Length; i++)
        {
            double freq = (double)counts[i] / draws;
            double se = Math.Sqrt(expected[i] * (1 - expected[i]) / draws);
            Assert.True(Math.Abs(freq - expected[i]) <= 5 * se + 1e-9,
                $"token {i}: frequency {freq:F4}, expected {expected[i]:F4}");
        }
    }

    [Fact]
    public void GreedyIsArgMax() => Assert.Equal(1, Sampler.Sample(Logits, new SamplingParams { Temperature = 0 }, 0.5));

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.5)]
    [InlineData(2.0)]
    public void TemperatureScalesTheSoftmax(double t) =>
        AssertDistribution(new SamplingParams { Temperature = t }, Expected(t, 0, 1, 2, 3, 4, 5));

    [Fact]
    public void TopKKeepsTheKMostLikely() =>
        AssertDistribution(new SamplingParams { Temperature = 1, TopK = 3 }, Expected(1, 1, 5, 2));

    [Fact]
    public void TopPKeepsTheSmallestNucleus()
    {
        // p(1) ≈ 0.364, p(5) ≈ 0.329: together ≥ 0.6, so exactly {1, 5} remain.
        AssertDistribution(new SamplingParams { Temperature = 1, TopP = 0.6 }, Expected(1, 1, 5));
    }

    [Fact]
    public void MinPDropsTokensBelowAFractionOfTheBest()
    {
        // min_p 0.5 keeps tokens with logit ≥ 3 - ln 2 ≈ 2.31: {1, 5, 2}.
        AssertDistribution(new SamplingParams { Temperature = 1, MinP = 0.5 }, Expected(1, 1, 5, 2));
    }

    [Fact]
    public void TopKThenTopPOnTheRenormalisedSet()
    {
        // Top-3 {1, 5, 2} renormalised: 0.397, 0.360, 0.241; top_p 0.7 keeps {1, 5}.
        AssertDistribution(new SamplingParams { Temperature = 1, TopK = 3, TopP = 0.7 }, Expected(1, 1, 5));
    }

    [Fact]
    public void TopKOfOneIsGreedyWhateverTheSeed()
    {
        for (int seed = 0; seed < 20; seed++)
            Assert.Equal(1, Sampler.Sample(Logits, new SamplingParams { Temperature = 5, TopK = 1 }, new Random(seed).NextDouble()));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.7)]
    public void TemperatureAloneOverAWideRowMatchesTheSoftmax(double t)
    {
        // 37 logits: the eight-wide exp and its scalar tail both draw; -inf (a banned token) is never drawn.
        var logits = Enumerable.Range(0, 37).Select(i => (float)Math.Sin(i * 1.3) * 2).ToArray();
        logits[9] = float.NegativeInfinity;
        var w = logits.Select(l => Math.Exp(l / t)).ToArray();
        double sum = w.Sum();
        var rng = new Random(99);
        var counts = new int[logits.Length];
        const int draws = 40000;
        var p = new SamplingParams { Temperature = t };
        for (int i = 0; i < draws; i++)
            counts[Sampler.Sample(logits, p, rng.NextDouble())]++;
        Assert.Equal(0, counts[9]);
        for (int i = 0; i < logits.Length; i++)
        {
            double expected = w[i] / sum, freq = (double)counts[i] / draws;
            Assert.True(Math.Abs(freq - expected) <= 5 * Math.Sqrt(expected * (1 - expected) / draws) + 1e-9,
                $"token {i}: frequency {freq:F4}, expected {expected:F4}");
        }
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        var p = new SamplingParams { Temperature = 1 };
        int[] Draw(int seed)
        {
            var rng = new Random(seed);
            return Enumerable.Range(0, 50).Select(_ => Sampler.Sample(Logits, p, rng.NextDouble())).ToArray();
        }
        Assert.Equal(Draw(42), Draw(42));
        Assert.NotEqual(Draw(42), Draw(43));
    }

    [Fact]
    public void LogprobsAreLogSoftmaxWithRankAndTopK()
    {
        float[] logits = [0f, (float)Math.Log(3), 0f];
        var lp = new double[3];
        LogprobsComputer.LogSoftmax(logits, lp);
        Assert.Equal(Math.Log(0.6), lp[1], 1e-6);
        var d = LogprobsComputer.Describe(lp, 2, 2);
        Assert.Equal(2, d.Rank);
        Assert.Equal([1, 0], d.Top.Select(t => t.TokenId));
        Assert.Equal(Math.Log(0.2), d.Logprob, 1e-6);
    }
}
