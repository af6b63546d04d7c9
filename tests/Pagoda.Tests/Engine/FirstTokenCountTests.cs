using Pagoda.Cli.Commands;
using Pagoda.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// EngineStats.NumFirstTokens counts sequences whose prefill has finished, which is what `bench latency` times its
/// prefill by: generated tokens also count the decodes of the requests that finished their prefill first.
/// </summary>
public class FirstTokenCountTests
{
    private static LLMEngine Engine() => new(new EngineArgs
    {
        Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 64, MaxModelLen = 256, MaxNumBatchedTokens = 64,
    });

    private static void AddFour(LLMEngine engine, string tag, int first = 100)
    {
        for (int i = 0; i < 4; i++)
            engine.AddRequest($"{tag}{i}", PromptInput.FromTokenIds([.. Enumerable.Range(first + 50 * i, 40)]),
                new SamplingParams { Temperature = 0, MaxTokens = 8, IgnoreEos = true });
    }

    [Fact]
    public void AStepCountsTheSequencesWhosePrefillItFinished()
    {
        // Four 40-token prompts under a 64-token budget: step 1 prefills r0 and 24 tokens of r1; step 2 decodes r0,
        // finishes r1 (16), prefills r2 (40) and 6 tokens of r3; step 3 decodes r0-r2 and finishes r3 (34 of 61).
        using var engine = Engine();
        AddFour(engine, "r");
        List<long> firsts = [], generated = [];
        for (int step = 0; step < 3; step++)
        {
            engine.Step();
            firsts.Add(engine.Stats.NumFirstTokens);
            generated.Add(engine.Stats.GenerationTokens);
        }
        Assert.Equal([1, 3, 4], firsts);
        Assert.Equal([1, 4, 8], generated);   // 4 after step 2, when r3 has not finished its prefill
    }

    [Fact]
    public void BenchLatencysPrefillEndsWhenEveryPromptHasItsFirstToken()
    {
        using var engine = Engine();
        AddFour(engine, "a");
        // The timed prefill is the schedule above's first three steps of ten (3 + 7 decodes).
        var (prefill, total) = BenchCommand.RunToCompletion(engine, 4);
        Assert.InRange(prefill, 0, total);
        Assert.Equal(4, engine.Stats.NumFirstTokens);
        // A second batch (new prompts: none cached) counts from where the first left off.
        AddFour(engine, "b", first: 400);
        engine.Step();
        Assert.Equal(5, engine.Stats.NumFirstTokens);
    }
}
