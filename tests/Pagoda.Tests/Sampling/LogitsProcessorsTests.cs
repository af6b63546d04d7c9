using Pagoda.Requests;
using Pagoda.Sampling;

namespace Pagoda.Tests.Sampling;

/// <summary>The host's logits edits on small rows whose results can be worked out by hand.</summary>
public class LogitsProcessorsTests
{
    [Fact]
    public void AMaskClearsItsUnsetBitsAndEverythingPastIt()
    {
        var logits = Enumerable.Range(0, 40).Select(i => (float)i).ToArray();
        LogitsProcessors.ApplyMask(logits, [(1 << 3) | (1 << 31)]);   // one word: tokens 3 and 31; 32..39 lie past it
        var kept = Enumerable.Range(0, 40).Where(i => !float.IsNegativeInfinity(logits[i])).ToArray();
        Assert.Equal([3, 31], kept);
    }

    [Fact]
    public void EditsThenPenaltiesInVllmsOrder()
    {
        var p = new SamplingParams { Temperature = 0, RepetitionPenalty = 2.0, FrequencyPenalty = 0.5, PresencePenalty = 0.25,
            LogitBias = new Dictionary<int, double> { [1] = 1.0, [4] = 3.0 }, MinTokens = 5 };
        // Prompt [1, 2], output [2, 2, 3]: token 2 twice in the output, 3 once, 1 only in the prompt; EOS (4) is banned
        // until min_tokens, whatever its bias.
        var req = new Request("r", [1, 2], p, 8, 1, new HashSet<int> { 4 });
        foreach (int t in new[] { 2, 2, 3 })
            req.AppendOutputToken(t, 64);
        float[] logits = [1f, 3f, 4f, -2f, 5f, 6f];
        LogitsProcessors.Apply(logits, req);
        // 1: (3 + 1) / 2; 2: 4 / 2 - (2·0.5 + 0.25); 3: -2·2 - (0.5 + 0.25); 4: banned; 0 and 5 untouched.
        Assert.Equal([1f, 2f, 0.75f, -4.75f, float.NegativeInfinity, 6f], logits);
    }
}
