using Pagoda.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// The parts of a step's phases that the benchmarks read apart (bench/HostOverhead's serial share): the launch is
/// part of the forward phase, deferred outputs part of the update phase.
/// </summary>
public class StepTimingsTests
{
    [Fact]
    public void TheLaunchIsPartOfTheForwardAndACpuStepDefersNoOutputs()
    {
        using var engine = new LLMEngine(new EngineArgs { Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 32, MaxModelLen = 128 });
        engine.AddRequest("r", PromptInput.FromTokenIds([.. Enumerable.Range(100, 20)]), new SamplingParams { Temperature = 0, MaxTokens = 6, IgnoreEos = true });
        engine.Step();   // the prefill
        engine.Timings.Reset();
        for (int i = 0; i < 4; i++)
            engine.Step();
        var (_, _, forward, _, update) = engine.Timings.PerStepMs();
        Assert.Equal(4, engine.Timings.Steps);
        // The CPU computes its forward at launch, so the launch is nearly all of the forward phase, and nothing is
        // deferred: its outputs are made in the update phase itself, with no separate outputs time.
        Assert.InRange(engine.Timings.LaunchMs, forward * 0.5, forward);
        Assert.True(engine.Timings.LaunchMs > 0);
        Assert.Equal(0, engine.Timings.OutputsMs);
        Assert.True(update > 0);
        engine.Timings.Reset();
        Assert.Equal(0, engine.Timings.LaunchMs);
    }
}
