using System.Text.Json.Nodes;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Models;

/// <summary>
/// longrope through the whole engine on tiny-phi3. There is no transformers golden for it, so the config is built
/// so that one factor set reproduces the plain-RoPE golden (unit factors, attention factor 1) and the other does not
/// (every frequency halved): which of the two runs shows that max_model_len picks the set, as vLLM does.
/// </summary>
public class LongRopeModelTests
{
    private static TempModel LongRopePhi3()
    {
        var m = new TempModel("tiny-phi3");
        m.EditConfig(o =>
        {
            JsonArray Twelve(double v) => new(Enumerable.Repeat(v, 12).Select(x => (JsonNode)x).ToArray());
            o["max_position_embeddings"] = 16384;
            o["rope_parameters"] = new JsonObject
            {
                ["rope_type"] = "longrope",
                ["rope_theta"] = 10000.0,
                ["partial_rotary_factor"] = 0.75,
                ["original_max_position_embeddings"] = 4096,
                ["attention_factor"] = 1.0,
                ["short_factor"] = Twelve(1.0),
                ["long_factor"] = Twelve(2.0),
            };
        });
        return m;
    }

    // Greedy ids and prompt logprobs of the 40-token golden prompt.
    private static (int[] Ids, double[] PromptLogprobs) Run(string model, int? maxModelLen, GoldenCase g)
    {
        using var llm = new LLM(new EngineArgs { Model = model, MaxModelLen = maxModelLen });
        var o = llm.Generate([PromptInput.FromTokenIds(g.PromptIds)],
            new SamplingParams { Temperature = 0, MaxTokens = g.OutputIds.Length, PromptLogprobs = 0, StopTokenIds = [8192, 8194] })[0];
        return (o.Outputs[0].TokenIds.ToArray(), o.PromptLogprobs!.Skip(1).Select(p => p!.Logprob).ToArray());
    }

    [Fact]
    public void MaxModelLenPicksTheFactorSet()
    {
        var g = Golden.Load("tiny-phi3", "ids", 2);
        using var m = LongRopePhi3();

        // Within the original context: the short (unit) set, so transformers' plain-RoPE numbers.
        var (ids, logprobs) = Run(m.Dir, 4096, g);
        Assert.Equal(g.OutputIds, ids);
        for (int i = 0; i < logprobs.Length; i++)
            Assert.True(Math.Abs(g.PromptLogprobs[i + 1]!.Value - logprobs[i]) <= 1e-4, $"prompt token {i + 1}");

        // max_model_len past the original (here the default, 16384): the long set for every position, short prompt or not.
        var (_, longLogprobs) = Run(m.Dir, null, g);
        Assert.Contains(longLogprobs.Select((lp, i) => Math.Abs(g.PromptLogprobs[i + 1]!.Value - lp)), d => d > 1e-3);
    }
}
