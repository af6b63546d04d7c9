using Pagoda.Sampling;

namespace Pagoda.Tests.Sampling;

public class SamplerTests
{
    private static float[] Logits() => [1.0f, 3.0f, 2.5f, -1.0f, 0.5f, 2.9f];

    [Fact]
    public void GreedyIsArgMax()
    {
        var p = new SamplingParams { Temperature = 0 };
        Assert.Equal(1, Sampler.Sample(Logits(), p, [], [], new Random(1)));
    }

    [Fact]
    public void TopKOfOneIsGreedyWhateverTheSeed()
    {
        var p = new SamplingParams { Temperature = 5, TopK = 1 };
        for (int seed = 0; seed < 20; seed++)
            Assert.Equal(1, Sampler.Sample(Logits(), p, [], [], new Random(seed)));
    }

    [Fact]
    public void TopKKeepsOnlyTheKMostLikely()
    {
        var p = new SamplingParams { Temperature = 10, TopK = 3 };
        var seen = Enumerable.Range(0, 300).Select(s => Sampler.Sample(Logits(), p, [], [], new Random(s))).ToHashSet();
        Assert.Equal(new HashSet<int> { 1, 5, 2 }, seen);
    }

    [Fact]
    public void TopPKeepsTheSmallestNucleus()
    {
        // Probabilities at temperature 1: token 1 ≈ 0.36, 5 ≈ 0.33, 2 ≈ 0.22: top_p 0.6 keeps exactly {1, 5}.
        var p = new SamplingParams { Temperature = 1, TopP = 0.6 };
        var seen = Enumerable.Range(0, 300).Select(s => Sampler.Sample(Logits(), p, [], [], new Random(s))).ToHashSet();
        Assert.Equal(new HashSet<int> { 1, 5 }, seen);
    }

    [Fact]
    public void MinPDropsUnlikelyTokens()
    {
        // min_p 0.5: keep tokens with p >= 0.5 * p(token 1), i.e. logit >= 3 - ln 2 ≈ 2.31: {1, 5, 2}.
        var p = new SamplingParams { Temperature = 1, MinP = 0.5 };
        var seen = Enumerable.Range(0, 400).Select(s => Sampler.Sample(Logits(), p, [], [], new Random(s))).ToHashSet();
        Assert.Equal(new HashSet<int> { 1, 5, 2 }, seen);
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        var p = new SamplingParams { Temperature = 1 };
        var a = Enumerable.Range(0, 50).Select(_ => 0).Select((_, i) => Sampler.Sample(Logits(), p, [], [], new Random(42 + i))).ToArray();
        var b = Enumerable.Range(0, 50).Select(_ => 0).Select((_, i) => Sampler.Sample(Logits(), p, [], [], new Random(42 + i))).ToArray();
        Assert.Equal(a, b);
        Assert.True(a.Distinct().Count() > 1, "temperature 1 over six tokens should not always pick the same one");
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegative()
    {
        float[] logits = [2f, -2f, 4f, 1f];
        Sampler.ApplyRepetitionPenalty(logits, 2f, [0, 1], [1]);
        Assert.Equal([1f, -4f, 4f, 1f], logits);
    }

    [Fact]
    public void RepetitionPenaltyChangesTheGreedyChoice()
    {
        var p = new SamplingParams { Temperature = 0, RepetitionPenalty = 2.0 };
        Assert.Equal(5, Sampler.Sample(Logits(), p, [1], [], new Random(0)));
    }

    [Theory]
    [InlineData(-1.0, 1.0, 0, "temperature")]
    [InlineData(1.0, 0.0, 0, "top_p")]
    [InlineData(1.0, 1.5, 0, "top_p")]
    [InlineData(1.0, 1.0, -2, "top_k")]
    public void ValidationNamesTheField(double temperature, double topP, int topK, string field)
    {
        var p = new SamplingParams { Temperature = temperature, TopP = topP, TopK = topK };
        var e = Assert.Throws<ArgumentException>(p.Validate);
        Assert.StartsWith(field, e.Message);
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
