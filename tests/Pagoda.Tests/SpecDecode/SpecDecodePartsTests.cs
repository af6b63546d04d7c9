using Pagoda.SpecDecode;

namespace Pagoda.Tests.SpecDecode;

/// <summary>The n-gram proposer, `--speculative-config` as vLLM reads it, and the choice of proposal lengths.</summary>
public class SpecDecodePartsTests
{
    [Fact]
    public void NgramProposesWhatFollowedTheLongestRecurringSuffix()
    {
        // vLLM's example: [4, 2, 3] does not recur, [2, 3] does, and three tokens follow it.
        Assert.Equal([4, 2, 3], new NgramProposer(2, 3).Propose([1, 2, 3, 4, 2, 3], 4));
        Assert.Equal([4, 2], new NgramProposer(2, 3).Propose([1, 2, 3, 4, 2, 3], 2));
        // The longer match wins over an earlier shorter one: [9, 5] recurs after [7, 5] did.
        Assert.Equal([1], new NgramProposer(1, 3).Propose([7, 5, 0, 9, 5, 1, 9, 5], 4)[..1]);
        // Equally long matches: the earliest.
        Assert.Equal([1, 5, 2], new NgramProposer(1, 1).Propose([5, 1, 5, 2, 5], 3));
        // A run of one token: the earliest occurrence of the longest suffix (4) ends at position 3; one token follows it.
        Assert.Equal([3], new NgramProposer(2, 4).Propose([3, 3, 3, 3, 3], 2));
        Assert.Equal([3, 3], new NgramProposer(2, 2).Propose([3, 3, 3, 3, 3], 2));
    }

    [Fact]
    public void NgramMatchesTheDefinitionOnRandomContexts()
    {
        // The definition, written out: for each earlier end e, the matched suffix length; the longest, earliest first.
        static int[] Reference(int[] t, int minN, int maxN, int k)
        {
            int bestLength = 0, bestEnd = -1;
            for (int e = 0; e < t.Length - 1; e++)
            {
                int n = 0;
                while (n < maxN && n <= e && t[e - n] == t[t.Length - 1 - n])
                    n++;
                if (n > bestLength)
                    (bestLength, bestEnd) = (n, e);
            }
            return bestLength < minN || k <= 0 ? [] : t[(bestEnd + 1)..Math.Min(t.Length, bestEnd + 1 + k)];
        }
        var random = new Random(3);
        for (int trial = 0; trial < 2000; trial++)
        {
            // Small alphabets make long matches and ties common.
            var t = Enumerable.Range(0, random.Next(1, 120)).Select(_ => random.Next(1 + trial % 6)).ToArray();
            int minN = random.Next(1, 4), maxN = minN + random.Next(0, 4), k = random.Next(0, 6);
            Assert.Equal(Reference(t, minN, maxN, k), new NgramProposer(minN, maxN).Propose(t, k));
        }
    }

    [Fact]
    public void NgramProposesNothingWithoutARecurringSuffixOfTheMinimumLength()
    {
        Assert.Empty(new NgramProposer(2, 3).Propose([1, 2, 3, 4, 5, 3], 4));   // only [3] recurs
        Assert.Empty(new NgramProposer(1, 3).Propose([1, 2, 3], 4));
        Assert.Empty(new NgramProposer(3, 3).Propose([1, 1], 4));
        Assert.Empty(new NgramProposer(1, 3).Propose([1, 2, 1], 0));
    }

    [Fact]
    public void ConfigReadsVllmsKeysAndDefaults()
    {
        var c = SpeculativeConfig.Parse("""{"method": "ngram", "num_speculative_tokens": 3}""");
        Assert.Equal(("ngram", 3, 5, 5), (c.Method, c.NumSpeculativeTokens, c.PromptLookupMin, c.PromptLookupMax));
        c = SpeculativeConfig.Parse("""{"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 4}""");
        Assert.Equal((4, 4), (c.PromptLookupMin, c.PromptLookupMax));
        c = SpeculativeConfig.Parse("""{"model": "[ngram]", "num_speculative_tokens": 2, "prompt_lookup_min": 2, "prompt_lookup_max": 4, "disable_by_batch_size": 8}""");
        Assert.Equal(("ngram", 2, 4, 8), (c.Method, c.PromptLookupMin, c.PromptLookupMax, c.DisableByBatchSize));
        c = SpeculativeConfig.Parse("""{"model": "/models/draft", "num_speculative_tokens": 4, "draft_tensor_parallel_size": 1}""");
        Assert.Equal(("draft_model", "/models/draft", true), (c.Method, c.Model, c.UsesDraftModel));
    }

    [Theory]
    [InlineData("""{"method": "ngram"}""", "num_speculative_tokens is required")]
    [InlineData("""{"method": "eagle", "model": "x", "num_speculative_tokens": 2}""", "method 'eagle' is not supported")]
    [InlineData("""{"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_min": 4, "prompt_lookup_max": 2}""", "prompt_lookup_min (4)")]
    [InlineData("""{"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_min": 0}""", "prompt_lookup_min must be at least 1")]
    [InlineData("""{"method": "ngram", "num_speculative_tokens": 2, "lookup": 3}""", "unknown key 'lookup'")]
    [InlineData("""{"method": "ngram", "num_speculative_tokens": 2, "disable_by_batch_size": 1}""", "disable_by_batch_size must be at least 2")]
    [InlineData("""{"model": "d", "num_speculative_tokens": 2, "draft_tensor_parallel_size": 2}""", "draft_tensor_parallel_size must be 1")]
    [InlineData("""{"method": "draft_model", "num_speculative_tokens": 2}""", "needs a model")]
    [InlineData("""{"num_speculative_tokens": 2}""", "give a method")]
    [InlineData("""[1]""", "must be a JSON object")]
    [InlineData("""{"method": "ngram", "num_speculative_tokens": "3"}""", "must be an integer")]
    public void ConfigMistakesAreOneLineErrors(string json, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => SpeculativeConfig.Parse(json));
        Assert.Contains("--speculative-config", e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void CostModelFitsTheStepTimeOfItsTokens()
    {
        var m = new StepCostModel();
        foreach (int n in new[] { 1, 3, 5, 2, 4, 1, 5 })
            m.Record(n, 0.010 + 0.002 * n);
        var (a, b) = m.Fit()!.Value;
        Assert.Equal(0.010, a, 6);
        Assert.Equal(0.002, b, 6);
        // Without spread in the tokens, the prior ratio splits the mean time.
        var flat = new StepCostModel(priorRatio: 0.1);
        flat.Record(1, 0.011);
        Assert.Equal((0.01, 0.001), (Math.Round(flat.Fit()!.Value.A, 6), Math.Round(flat.Fit()!.Value.B, 6)));
    }

    [Fact]
    public void ALineWithNoFixedPartMakesATokenCostNearlyTheWholeStep()
    {
        // 16 requests: steps of 16 tokens take 0.3 ms, verification steps of 20-28 take 0.7-1.1 ms (a GPU's jump to other
        // kernels): the least-squares line crosses zero, and a verified token must not fall back to the prior's 5%.
        var m = new StepCostModel(priorRatio: 0.05);
        foreach (int n in new[] { 16, 20, 16, 24, 16, 28, 16, 20 })
            m.Record(n, n == 16 ? 0.0003 : 0.0005 + 0.00005 * (n - 16));
        var (a, b) = m.Fit()!.Value;
        Assert.True(b / a > 1, $"a verified token costs {b / a:F3} of a step's fixed part");
        var spec = new SpecDecoder(new SpeculativeConfig { Method = "ngram", NumSpeculativeTokens = 4, PromptLookupMin = 1, PromptLookupMax = 3 }, 100);
        foreach (int n in new[] { 16, 20, 16, 24, 16, 28, 16, 20 })
            spec.Cost.Record(n, n == 16 ? 0.0003 : 0.0005 + 0.00005 * (n - 16));
        Assert.All(spec.ChooseLengths([.. Enumerable.Repeat((4, 0.8), 16)], numRunning: 16), k => Assert.Equal(0, k));
    }

    [Fact]
    public void ProposalLengthsFollowAcceptanceAndCost()
    {
        var config = new SpeculativeConfig { Method = "ngram", NumSpeculativeTokens = 4, PromptLookupMin = 1, PromptLookupMax = 3 };
        var cheap = new SpecDecoder(config, 100);
        foreach (int n in new[] { 1, 2, 3, 4, 5 })
            cheap.Cost.Record(n, 0.010 + 0.0001 * n);   // a verified token costs 1% of a step
        Assert.Equal([4, 0], cheap.ChooseLengths([(4, 0.9), (4, 0.005)], numRunning: 2));
        Assert.Equal([4, 2], cheap.ChooseLengths([(4, 0.9), (2, 0.5)], numRunning: 2));

        var dear = new SpecDecoder(config, 100);
        foreach (int n in new[] { 16, 20, 24, 28, 32 })
            dear.Cost.Record(n, 0.010 + 0.002 * n);     // a large CPU batch: each token costs 5% of the fixed part
        // 8 running: the step makes 8 tokens in 26 ms; a draft must be worth 1.25 × 8 × 2 / 26 = 0.77 tokens, and more as
        // drafts lengthen the step: 0.9 and 0.81 are, 0.729 and 0.6 are not.
        Assert.Equal([2, 0], dear.ChooseLengths([(4, 0.9), (4, 0.6)], numRunning: 8));
        // 16 running: 1.25 × 16 × 2 / 42 = 0.95 tokens; none is.
        Assert.Equal([0, 0], dear.ChooseLengths([(4, 0.9), (4, 0.6)], numRunning: 16));
    }

    [Fact]
    public void ADraftModelsForwardsCountOncePerProposalPosition()
    {
        var config = new SpeculativeConfig { Method = "draft_model", Model = "d", NumSpeculativeTokens = 3 };
        var d = new SpecDecoder(config, 100);
        foreach (int n in new[] { 1, 2, 3, 4, 5 })
            d.Cost.Record(n, 0.010 + 0.0001 * n);
        Assert.Equal([3, 3], d.ChooseLengths([(3, 0.9), (3, 0.9)], numRunning: 2));   // free drafts: all of them
        d.RecordDraftForwards(2, 0.008);   // a draft forward costs 40% of a step: shared by two requests at α 0.9, two positions pay
        Assert.Equal([2, 2], d.ChooseLengths([(3, 0.9), (3, 0.9)], numRunning: 2));
        var dear = new SpecDecoder(config, 100);
        foreach (int n in new[] { 1, 2, 3, 4, 5 })
            dear.Cost.Record(n, 0.010 + 0.0001 * n);
        dear.RecordDraftForwards(1, 0.006);   // 60% of a step: the first position buys 1.8 tokens for 0.0062 s; the second,
        Assert.Equal([1, 1], dear.ChooseLengths([(3, 0.9), (3, 0.9)], numRunning: 2));   // 1.62 more, no longer pays
        // A request whose drafts are rarely accepted does not pay for a forward.
        Assert.Equal([0], dear.ChooseLengths([(3, 0.2)], numRunning: 1));
    }
}
