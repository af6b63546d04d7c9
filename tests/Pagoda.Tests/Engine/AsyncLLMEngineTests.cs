using Pagoda.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>Streaming from the engine loop: delta and cumulative outputs, concurrency and cancellation.</summary>
public class AsyncLLMEngineTests
{
    private static AsyncLLMEngine Start() => new(new LLMEngine(new EngineArgs { Model = TestPaths.Model("fortune-chat") }));

    private static readonly GoldenCase G = Golden.Load("fortune-chat", "completions", 0);

    [Fact]
    public async Task DeltasConcatenateToTheFinalOutput()
    {
        using var engine = Start();
        var p = new SamplingParams { Temperature = 0, MaxTokens = 48, OutputKind = RequestOutputKind.Delta, Logprobs = 1 };
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        int logprobs = 0;
        RequestOutput? last = null;
        await foreach (var o in engine.GenerateAsync("r1", PromptInput.FromTokenIds(G.PromptIds), p))
        {
            text.Append(o.Outputs.Single().Text);
            ids.AddRange(o.Outputs.Single().TokenIds);
            logprobs += o.Outputs.Single().Logprobs!.Count;
            last = o;
        }
        Assert.True(last!.Finished);
        Assert.Equal(G.Text, text.ToString());
        Assert.Equal(G.OutputIds, ids);
        Assert.Equal(G.OutputIds.Length, logprobs);
        Assert.Equal("stop", last.Outputs[0].FinishReason);
    }

    [Fact]
    public async Task CumulativeOutputsGrowToTheFinalOne()
    {
        using var engine = Start();
        var p = new SamplingParams { Temperature = 0, MaxTokens = 48 };
        var seen = new List<RequestOutput>();
        await foreach (var o in engine.GenerateAsync("r1", PromptInput.FromTokenIds(G.PromptIds), p))
            seen.Add(o);
        Assert.True(seen.Count > 10);
        for (int i = 1; i < seen.Count; i++)
            Assert.StartsWith(seen[i - 1].Outputs[0].Text, seen[i].Outputs[0].Text);
        Assert.Equal(G.Text, seen[^1].Outputs[0].Text);
    }

    [Fact]
    public async Task ConcurrentStreamsMatchOfflineResults()
    {
        using var engine = Start();
        var prompts = Enumerable.Range(0, 12).Select(i => $"Prompt {i}: tell me about the number {i}").ToList();
        var p = new SamplingParams { Temperature = 0, MaxTokens = 16, IgnoreEos = true, OutputKind = RequestOutputKind.FinalOnly };
        var results = await Task.WhenAll(prompts.Select(async (prompt, i) =>
        {
            RequestOutput? last = null;
            await foreach (var o in engine.GenerateAsync($"c{i}", prompt, p))
                last = o;
            return last!.Outputs[0].TokenIds;
        }));
        var offline = SharedModels.Use("fortune-chat", llm => llm.Generate(prompts.Select(x => (PromptInput)x), p));
        Assert.Equal(offline.Select(o => o.Outputs[0].TokenIds), results);
    }

    [Fact]
    public async Task CancellingAStreamAbortsItAndFreesItsBlocks()
    {
        using var engine = Start();
        using var cts = new CancellationTokenSource();
        var p = new SamplingParams { Temperature = 0, MaxTokens = 1000, IgnoreEos = true };
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in engine.GenerateAsync("long", "Once upon a time", p, cts.Token))
            {
                if (++received == 5)
                    cts.Cancel();
            }
        });
        for (int i = 0; i < 200 && (engine.Stats.NumRunning > 0 || engine.Stats.KvCacheUsage > 0); i++)
            await Task.Delay(10);
        Assert.Equal(0, engine.Stats.NumRunning);
        Assert.Equal(0, engine.Stats.KvCacheUsage);
    }

    [Fact]
    public async Task InvalidRequestFailsOnlyItsOwnStream()
    {
        using var engine = Start();
        await Assert.ThrowsAsync<ArgumentException>(async () =>
        {
            await foreach (var _ in engine.GenerateAsync("bad", "x", new SamplingParams { TopP = 2 })) { }
        });
        int count = 0;
        await foreach (var _ in engine.GenerateAsync("good", "x", new SamplingParams { MaxTokens = 2, OutputKind = RequestOutputKind.FinalOnly }))
            count++;
        Assert.Equal(1, count);
    }
}
