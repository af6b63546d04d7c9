using Pagoda.Tests.Support;

namespace Pagoda.Tests.Models;

/// <summary>
/// Every golden greedy run of every fixture model: identical output ids, per-step logprob and top-5
/// within 1e-4, the first step's top-10 and every prompt logprob within 1e-4.
/// </summary>
public class GoldenModelTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<object[]> FortuneChat => Golden.Cases("fortune-chat");
    public static IEnumerable<object[]> TinyLlama => Golden.Cases("tiny-llama");
    public static IEnumerable<object[]> TinyQwen3 => Golden.Cases("tiny-qwen3");
    public static IEnumerable<object[]> TinyOpt => Golden.Cases("tiny-opt");
    public static IEnumerable<object[]> TinyGemma2 => Golden.Cases("tiny-gemma2");
    public static IEnumerable<object[]> TinyGemma3 => Golden.Cases("tiny-gemma3");
    public static IEnumerable<object[]> TinyMistral => Golden.Cases("tiny-mistral");
    public static IEnumerable<object[]> TinyPhi3 => Golden.Cases("tiny-phi3");
    public static IEnumerable<object[]> TinyQwen2Yarn => Golden.Cases("tiny-qwen2-yarn");
    public static IEnumerable<object[]> TinyQwen3Moe => Golden.Cases("tiny-qwen3-moe");
    public static IEnumerable<object[]> TinyMixtral => Golden.Cases("tiny-mixtral");
    public static IEnumerable<object[]> TinyGptOss => Golden.Cases("tiny-gpt-oss");

    [Theory, MemberData(nameof(FortuneChat))]
    public void FortuneChatMatchesTransformers(string kind, int index) => Check(Golden.Load("fortune-chat", kind, index));

    [Theory, MemberData(nameof(TinyLlama))]
    public void TinyLlamaMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-llama", kind, index));

    [Theory, MemberData(nameof(TinyQwen3))]
    public void TinyQwen3MatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-qwen3", kind, index));

    [Theory, MemberData(nameof(TinyOpt))]
    public void TinyOptMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-opt", kind, index));

    [Theory, MemberData(nameof(TinyGemma2))]
    public void TinyGemma2MatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-gemma2", kind, index));

    [Theory, MemberData(nameof(TinyGemma3))]
    public void TinyGemma3MatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-gemma3", kind, index));

    // Sliding window 48 on every layer (the longest prompt, 130 tokens, crosses it), GQA 4:1.
    [Theory, MemberData(nameof(TinyMistral))]
    public void TinyMistralMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-mistral", kind, index));

    // Fused qkv_proj / gate_up_proj and partial rotary 0.75.
    [Theory, MemberData(nameof(TinyPhi3))]
    public void TinyPhi3MatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-phi3", kind, index));

    // yarn RoPE, factor 4 over an original context of 64 (the longer prompts go past it).
    [Theory, MemberData(nameof(TinyQwen2Yarn))]
    public void TinyQwen2YarnMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-qwen2-yarn", kind, index));

    // 8 experts, top-2 with norm_topk_prob, q/k RMSNorm.
    [Theory, MemberData(nameof(TinyQwen3Moe))]
    public void TinyQwen3MoeMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-qwen3-moe", kind, index));

    // 4 experts, softmax then renormalised top-2.
    [Theory, MemberData(nameof(TinyMixtral))]
    public void TinyMixtralMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-mixtral", kind, index));

    // Biased router (top-2 of the logits, then softmax), clamped SwiGLU experts stored [E, in, out], attention biases
    // and sinks, sliding (32) and full layers alternating, yarn factor 32 over an original context of 64.
    [Theory, MemberData(nameof(TinyGptOss))]
    public void TinyGptOssMatchesTransformers(string kind, int index) => Check(Golden.Load("tiny-gpt-oss", kind, index));

    private static void Check(GoldenCase g)
    {
        var p = new SamplingParams
        {
            Temperature = 0,
            MaxTokens = g.OutputIds.Length,
            Logprobs = 10,
            PromptLogprobs = 5,
            StopTokenIds = [8192, 8194], // the golden run stopped at either
        };
        var output = SharedModels.Use(g.Model, llm => llm.Generate([PromptInput.FromTokenIds(g.PromptIds)], p))[0];
        var c = output.Outputs[0];

        Assert.Equal(g.OutputIds, c.TokenIds);
        for (int s = 0; s < g.Steps.Length; s++)
        {
            var (token, logprob, top5) = g.Steps[s];
            var lp = c.Logprobs![s];
            Assert.Equal(token, lp.TokenId);
            AssertClose(logprob, lp.Logprob, $"step {s} logprob");
            for (int k = 0; k < top5.Length; k++)
            {
                Assert.Equal(top5[k].Id, lp.Top[k].TokenId);
                AssertClose(top5[k].Logprob, lp.Top[k].Logprob, $"step {s} top{k + 1}");
            }
        }
        for (int k = 0; k < g.FirstTop10.Length; k++)
        {
            Assert.Equal(g.FirstTop10[k].Id, c.Logprobs![0].Top[k].TokenId);
            AssertClose(g.FirstTop10[k].Logprob, c.Logprobs[0].Top[k].Logprob, $"first top{k + 1}");
        }

        Assert.Equal(g.PromptLogprobs.Length, output.PromptLogprobs!.Count);
        Assert.Null(output.PromptLogprobs[0]);
        for (int i = 1; i < g.PromptLogprobs.Length; i++)
        {
            Assert.Equal(g.PromptIds[i], output.PromptLogprobs[i]!.TokenId);
            AssertClose(g.PromptLogprobs[i]!.Value, output.PromptLogprobs[i]!.Logprob, $"prompt token {i}");
        }
    }

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= Tolerance, $"{what}: expected {expected}, got {actual}");
}
