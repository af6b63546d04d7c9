using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>Every stop condition and sampling option, end to end on the embedded model.</summary>
public class StopAndSamplingOptionTests
{
    private static readonly GoldenCase G = Golden.Load("fortune-chat", "completions", 0);

    private static CompletionOutput Run(SamplingParams p, PromptInput? prompt = null) =>
        SharedModels.Use("fortune-chat", llm => llm.Generate([prompt ?? PromptInput.FromTokenIds(G.PromptIds)], p))[0].Outputs[0];

    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 48 };

    [Fact]
    public void StopStringCutsTheTextBeforeIt()
    {
        // Golden text: " a glitter.  You just won't have much problem.\n        -- Lennon/McC.-501"
        var o = Run(Greedy with { Stop = ["won't"] });
        Assert.Equal(" a glitter.  You just ", o.Text);
        Assert.Equal("stop", o.FinishReason);
        Assert.Equal("won't", o.StopReason);
        Assert.True(o.TokenIds.Count < G.OutputIds.Length);
    }

    [Fact]
    public void IncludeStopStrInOutputKeepsIt()
    {
        var o = Run(Greedy with { Stop = ["problem", "glitter"], IncludeStopStrInOutput = true });
        Assert.Equal(" a glitter", o.Text);
        Assert.Equal("glitter", o.StopReason);
    }

    [Fact]
    public void MinTokensBansEndOfSequence()
    {
        var o = Run(Greedy with { MinTokens = 40, MaxTokens = 40 });
        Assert.Equal(40, o.TokenIds.Count);
        Assert.DoesNotContain(8194, o.TokenIds);
        Assert.Equal("length", o.FinishReason);
    }

    [Fact]
    public void IgnoreEosRunsToMaxTokens()
    {
        var o = Run(Greedy with { IgnoreEos = true, MaxTokens = 40 });
        Assert.Equal(40, o.TokenIds.Count);
        Assert.Equal(G.OutputIds, o.TokenIds.Take(G.OutputIds.Length));
    }

    [Fact]
    public void LogitBiasForcesAToken()
    {
        var o = Run(Greedy with { MaxTokens = 3, LogitBias = new Dictionary<int, double> { [42] = 100 } });
        Assert.Equal([42, 42, 42], o.TokenIds);
    }

    [Fact]
    public void AllowedTokenIdsRestrictTheChoice()
    {
        var o = Run(new SamplingParams { Temperature = 1, Seed = 3, MaxTokens = 10, AllowedTokenIds = [13, 220, 302] });
        Assert.All(o.TokenIds, t => Assert.Contains(t, new[] { 13, 220, 302 }));
    }

    [Fact]
    public void BadWordsAreNeverGenerated()
    {
        var o = Run(Greedy with { BadWords = ["glitter"] });
        Assert.DoesNotContain("glitter", o.Text);
        Assert.NotEqual(G.OutputIds.Take(3), o.TokenIds.Take(3));
    }

    [Fact]
    public void FrequencyAndPresencePenaltiesChangeRepetitiveOutput()
    {
        var plain = Run(Greedy with { IgnoreEos = true, MaxTokens = 40 });
        var penalised = Run(Greedy with { IgnoreEos = true, MaxTokens = 40, FrequencyPenalty = 2, PresencePenalty = 2 });
        Assert.NotEqual(plain.TokenIds, penalised.TokenIds);
        Assert.True(penalised.TokenIds.Distinct().Count() >= plain.TokenIds.Distinct().Count());
    }

    [Fact]
    public void NSamplesAreIndexedSeededAndIndependent()
    {
        var p = new SamplingParams { N = 3, Temperature = 1, Seed = 5, MaxTokens = 12, IgnoreEos = true };
        var o = SharedModels.Use("fortune-chat", llm => llm.Generate([PromptInput.FromTokenIds(G.PromptIds)], p))[0];
        Assert.Equal([0, 1, 2], o.Outputs.Select(c => c.Index));
        Assert.Equal(3, o.Outputs.Select(c => string.Join(",", c.TokenIds)).Distinct().Count());
        // Child i draws from seed + i: the second sample equals a single request seeded with 6.
        var single = Run(p with { N = 1, Seed = 6 });
        Assert.Equal(single.TokenIds, o.Outputs[1].TokenIds);
    }

    [Fact]
    public void SkipSpecialTokensFalseKeepsThemInTheText()
    {
        var o = Run(Greedy with { IgnoreEos = true, MaxTokens = 40, SkipSpecialTokens = false });
        Assert.Contains("<|im_end|>", o.Text);
    }

    [Fact]
    public void StopTokenIdsReportTheToken()
    {
        var o = Run(Greedy with { StopTokenIds = [G.OutputIds[2]] });
        Assert.Equal(G.OutputIds.Take(3), o.TokenIds);
        Assert.Equal(G.OutputIds[2], o.StopReason);
    }
}
