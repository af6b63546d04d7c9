using Pagoda.SpecDecode;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.SpecDecode;

/// <summary>
/// Speculation changes no output: every row is drawn as it would be without drafts (the same uniform for the same
/// output position, penalties counting the accepted drafts before it), so seeded sampled requests with every sampling
/// parameter give the same tokens, logprobs and finish, in one batch; stop strings and max_tokens end a request in the
/// middle of a verified block. The distribution of a drafted position is the model's (chi-square).
/// </summary>
public class SpecDecodeSamplingTests
{
    // Fortune-chat's chat turn with "ignore_eos": past the answer it writes new turns of the same shape, which n-grams predict.
    private static readonly PromptInput Prompt = (PromptInput)"<|user|>\nTell me a fortune.\n<|assistant|>\n";

    // Every proposal verified at full length, whatever the step timings say.
    private static readonly SpeculativeConfig Ngram = new() { Method = "ngram", NumSpeculativeTokens = 4, PromptLookupMin = 1, PromptLookupMax = 4, AdaptiveLengths = false };

    private static readonly SamplingParams[] Requests =
    [
        new() { Temperature = 0.8, TopP = 0.9, TopK = 20, RepetitionPenalty = 1.1, Seed = 1, MaxTokens = 96, IgnoreEos = true, Logprobs = 3 },
        new() { Temperature = 1.0, MinP = 0.05, FrequencyPenalty = 0.4, PresencePenalty = 0.3, Seed = 2, MaxTokens = 96, IgnoreEos = true },
        new() { Temperature = 0.6, TopP = 0.9, Seed = 3, MaxTokens = 80, MinTokens = 40, Logprobs = 1 },
        new() { Temperature = 0, MaxTokens = 120, IgnoreEos = true, Stop = ["history"], Logprobs = 2 },
        new() { Temperature = 0, MaxTokens = 37, IgnoreEos = true, BadWords = ["the"], LogitBias = new Dictionary<int, double> { [13] = 2 } },
        new() { Temperature = 0.9, Seed = 4, N = 2, MaxTokens = 64, IgnoreEos = true, RepetitionPenalty = 1.3 },
        new() { Temperature = 0.7, MaxTokens = 70, IgnoreEos = true, Seed = 5, StopTokenIds = [TokenOf25th(new() { Temperature = 0.7, MaxTokens = 70, IgnoreEos = true, Seed = 5 })] },
    ];

    // A stop token id the request will meet: its 25th token without one.
    private static int TokenOf25th(SamplingParams p) => SharedModels.Use("fortune-chat", llm => llm.Generate([Prompt], p)[0].Outputs[0].TokenIds[24]);

    private static IReadOnlyList<RequestOutput> Run(SpeculativeConfig? spec, out SpecDecodingStats? stats)
    {
        using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), SpeculativeConfig = spec });
        var outputs = llm.Generate(Requests.Select(_ => Prompt).ToList(), Requests);
        stats = llm.Engine.SpecDecodingStats;
        return outputs;
    }

    [Fact]
    public void SeededSampledRequestsGiveTheSameOutputsWithAndWithoutSpeculation()
    {
        var plain = Run(null, out _);
        var spec = Run(Ngram, out var stats);
        for (int r = 0; r < Requests.Length; r++)
        {
            Assert.Equal(plain[r].Outputs.Count, spec[r].Outputs.Count);
            for (int n = 0; n < plain[r].Outputs.Count; n++)
            {
                var (a, b) = (plain[r].Outputs[n], spec[r].Outputs[n]);
                Assert.True(a.TokenIds.SequenceEqual(b.TokenIds), $"request {r}.{n}: tokens differ");
                Assert.Equal(a.Text, b.Text);
                Assert.Equal((a.FinishReason, a.StopReason), (b.FinishReason, b.StopReason));
                Assert.Equal(a.Logprobs?.Count, b.Logprobs?.Count);
                for (int i = 0; i < (a.Logprobs?.Count ?? 0); i++)
                {
                    Assert.Equal(a.Logprobs![i].Top.Select(t => t.TokenId), b.Logprobs![i].Top.Select(t => t.TokenId));
                    Assert.True(Math.Abs(a.Logprobs[i].Logprob - b.Logprobs[i].Logprob) < 1e-4, $"request {r} logprob {i}");
                }
            }
        }
        // The stop string and the stop token ended their requests early; drafts were verified and accepted.
        Assert.Equal("stop", spec[3].Outputs[0].FinishReason);
        Assert.Equal("stop", spec[6].Outputs[0].FinishReason);
        Assert.True(stats!.NumDrafts > 20 && stats.NumAcceptedTokens > 20, $"{stats.NumDrafts} drafts, {stats.NumAcceptedTokens} accepted");
        Assert.True(stats.NumAcceptedTokens < stats.NumDraftTokens);
        var perPos = stats.NumAcceptedTokensPerPos;
        Assert.Equal(stats.NumAcceptedTokens, perPos.Sum());
        Assert.True(perPos.Zip(perPos.Skip(1)).All(p => p.First >= p.Second), "a later draft is accepted only after the earlier ones");
    }

    [Fact]
    public void ADraftedPositionFollowsTheModelsDistribution()
    {
        // The model's first token is random (mostly " history"); the second is drafted by lookup whenever the first
        // occurred in the prompt (a draft for the last token would be wasted: the step samples one after the drafts anyway). Over 1,000 seeds, the second token after the most frequent first token must follow
        // the model's distribution given that prefix (its top 10 and the rest, chi-square at p = 0.001).
        const int Draws = 1000;
        var prompt = (PromptInput)("<|user|>\nSay something about history.\n<|assistant|>\nThe only thing we learn from history is that we do not learn.\n\n"
            + "We learn from history that we do not learn from");
        using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), SpeculativeConfig = Ngram with { NumSpeculativeTokens = 1 } });
        var outputs = llm.Generate(Enumerable.Repeat(prompt, Draws).ToList(),
            Enumerable.Range(0, Draws).Select(i => new SamplingParams { Temperature = 1, Seed = 1000 + i, MaxTokens = 3, IgnoreEos = true }).ToList());
        Assert.True(llm.Engine.SpecDecodingStats!.NumDrafts > Draws / 4, $"{llm.Engine.SpecDecodingStats.NumDrafts} drafts");
        var first = outputs.GroupBy(o => o.Outputs[0].TokenIds[0]).MaxBy(g => g.Count())!;
        var prefix = llm.Engine.Tokenizer.Encode(prompt.Text!).Append(first.Key).ToArray();
        var exact = llm.Generate([PromptInput.FromTokenIds(prefix)], [new SamplingParams { Temperature = 0, MaxTokens = 1, Logprobs = 10 }])[0].Outputs[0].Logprobs![0].Top;
        var counts = first.GroupBy(o => o.Outputs[0].TokenIds[1]).ToDictionary(g => g.Key, g => g.Count());
        double n = first.Count();
        Assert.True(n > 250, $"only {n} draws share the first token");
        // Bins: the top tokens expected at least 5 times, and everything else.
        var bins = exact.Where(t => n * Math.Exp(t.Logprob) >= 5).ToList();
        double chi = 0, restP = 1, restCount = n;
        foreach (var t in bins)
        {
            double expected = n * Math.Exp(t.Logprob);
            restP -= Math.Exp(t.Logprob);
            restCount -= counts.GetValueOrDefault(t.TokenId);
            chi += Math.Pow(counts.GetValueOrDefault(t.TokenId) - expected, 2) / expected;
        }
        // The rest is a bin of its own when it is expected often enough; else the top bins' counts are the whole test.
        int dof = bins.Count - 1;
        if (n * restP >= 5)
        {
            chi += Math.Pow(restCount - n * restP, 2) / (n * restP);
            dof++;
        }
        double[] critical = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59];   // p = 0.001, 1..10 degrees of freedom
        Assert.True(dof >= 1, "the distribution is too peaked to test");
        Assert.True(chi < critical[dof - 1], $"chi-square {chi:F1} over {dof} degrees of freedom (n = {n})");
    }
}
