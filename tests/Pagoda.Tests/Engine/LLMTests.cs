using System.Text.Json.Nodes;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>The offline API end to end on the embedded model: defaults, seeds, stop conditions, errors.</summary>
public class LLMTests
{
    private static IReadOnlyList<RequestOutput> Gen(params (PromptInput Prompt, SamplingParams Params)[] requests) =>
        SharedModels.Use("fortune-chat", llm => llm.Generate(requests.Select(r => r.Prompt).ToList(), requests.Select(r => r.Params).ToList()));

    [Fact]
    public void DefaultsComeFromGenerationConfig()
    {
        var p = SharedModels.Use("fortune-chat", llm => llm.GetDefaultSamplingParams());
        Assert.Equal((0.7, 0.8, 20, 1.05, 16), (p.Temperature, p.TopP, p.TopK, p.RepetitionPenalty, p.MaxTokens));
    }

    [Fact]
    public void GenerationConfigVllmIgnoresTheFile()
    {
        using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), GenerationConfig = "vllm" });
        var p = llm.GetDefaultSamplingParams();
        Assert.Equal((1.0, 1.0, 0, 1.0), (p.Temperature, p.TopP, p.TopK, p.RepetitionPenalty));
        Assert.Equal([8194], llm.Engine.EosTokenIds); // the tokenizer's EOS only
    }

    [Fact]
    public void TextPromptsAreTokenizedAndOutputsDecoded()
    {
        var g = Golden.Load("fortune-chat", "completions", 0);
        var o = Gen((g.Prompt!, new SamplingParams { Temperature = 0, MaxTokens = 64 }))[0];
        Assert.Equal(g.Prompt, o.Prompt);
        Assert.Equal(g.PromptIds, o.PromptTokenIds);
        Assert.Equal(g.OutputIds, o.Outputs[0].TokenIds);
        Assert.Equal(g.Text, o.Outputs[0].Text);
        Assert.Equal("stop", o.Outputs[0].FinishReason);
        Assert.Null(o.Outputs[0].StopReason);
        Assert.Null(o.Outputs[0].CumulativeLogprob);
    }

    [Fact]
    public void ChatConversationsUseTheTemplate()
    {
        var g = Golden.Load("fortune-chat", "chats", 0);
        var o = SharedModels.Use("fortune-chat", llm => llm.Chat([g.Messages!], new SamplingParams { Temperature = 0, MaxTokens = 48 }))[0];
        Assert.Equal(g.Rendered, o.Prompt);
        Assert.Equal(g.PromptIds, o.PromptTokenIds);
        Assert.Equal(g.OutputIds, o.Outputs[0].TokenIds);
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndSeedsDiffer()
    {
        var p = new SamplingParams { Temperature = 1.0, MaxTokens = 12, Seed = 7, IgnoreEos = true };
        var a = Gen(("Tell me a joke", p), ("Tell me a joke", p), ("Tell me a joke", p with { Seed = 8 }));
        Assert.Equal(a[0].Outputs[0].TokenIds, a[1].Outputs[0].TokenIds);
        Assert.NotEqual(a[0].Outputs[0].TokenIds, a[2].Outputs[0].TokenIds);
    }

    [Fact]
    public void MaxTokensEndsWithLength()
    {
        var o = Gen(("Hello", new SamplingParams { Temperature = 0, MaxTokens = 3, IgnoreEos = true }))[0].Outputs[0];
        Assert.Equal(3, o.TokenIds.Count);
        Assert.Equal("length", o.FinishReason);
    }

    [Fact]
    public void StopTokenIdIsTheStopReason()
    {
        var g = Golden.Load("fortune-chat", "completions", 0);
        int stopAt = g.OutputIds[3];
        var o = Gen((PromptInput.FromTokenIds(g.PromptIds), new SamplingParams { Temperature = 0, MaxTokens = 40, StopTokenIds = [stopAt] }))[0].Outputs[0];
        Assert.Equal(g.OutputIds.Take(4), o.TokenIds);
        Assert.Equal("stop", o.FinishReason);
        Assert.Equal(stopAt, o.StopReason);
    }

    [Fact]
    public void OutputsComeBackInInputOrder()
    {
        var p = new SamplingParams { Temperature = 0, MaxTokens = 2 };
        var o = Gen(("first", p), ("second", p), ("third", p));
        Assert.Equal(["first", "second", "third"], o.Select(x => x.Prompt));
    }

    [Fact]
    public void PromptLongerThanMaxModelLenIsRejected()
    {
        using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("tiny-qwen3"), MaxModelLen = 8 });
        var e = Assert.Throws<ArgumentException>(() => llm.Generate([PromptInput.FromTokenIds(Enumerable.Range(1, 8).ToArray())]));
        Assert.Contains("--max-model-len 8", e.Message);
        // Output stops at the context limit.
        var o = llm.Generate([PromptInput.FromTokenIds([1, 2, 3])], new SamplingParams { Temperature = 0, MaxTokens = 100, IgnoreEos = true })[0];
        Assert.Equal(5, o.Outputs[0].TokenIds.Count);
        Assert.Equal("length", o.Outputs[0].FinishReason);
    }

    [Fact]
    public void TokenIdsOutsideTheVocabularyAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Gen((PromptInput.FromTokenIds([1, 99999]), new SamplingParams())));
        Assert.Contains("99999", e.Message);
    }

    [Fact]
    public void SmallBlockSizeGivesTheSameTokens()
    {
        var g = Golden.Load("tiny-llama", "completions", 1);
        using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("tiny-llama"), BlockSize = 1 });
        var o = llm.Generate([PromptInput.FromTokenIds(g.PromptIds)], new SamplingParams { Temperature = 0, MaxTokens = g.OutputIds.Length, StopTokenIds = [8192, 8194] })[0];
        Assert.Equal(g.OutputIds, o.Outputs[0].TokenIds);
    }

    [Fact]
    public void RenderChatAddsTheGenerationPrompt()
    {
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" });
        var o = SharedModels.Use("fortune-chat", llm => llm.RenderChat(messages));
        Assert.False(o.AddSpecialTokens);
        Assert.EndsWith("<|im_start|>assistant\n", o.Text);
    }
}
