using Pagoda.Engine;
using Pagoda.Cuda;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// The step budget a user gets without --max-num-batched-tokens: the device's default for the usage context, as
/// vLLM's get_batch_defaults picks it (larger on cards of 70 GiB or more, except the A100; larger offline than served).
/// </summary>
public class BatchDefaultsTests
{
    private const long GiB = 1L << 30;

    [Theory]
    [InlineData(80, "NVIDIA H100 80GB HBM3", 8192, 16384)]
    [InlineData(141, "NVIDIA H200", 8192, 16384)]
    [InlineData(80, "NVIDIA A100-SXM4-80GB", 2048, 8192)]
    [InlineData(24, "NVIDIA GeForce RTX 4090", 2048, 8192)]
    [InlineData(69, "NVIDIA H100 NVL (a partition)", 2048, 8192)]
    public void AGpuDefaultsAsVllmDoes(long gib, string name, int served, int offline)
    {
        Assert.Equal(served, CudaProvider.BatchDefaults(gib * GiB, name, UsageContext.OpenAIApiServer));
        Assert.Equal(offline, CudaProvider.BatchDefaults(gib * GiB, name, UsageContext.LlmClass));
    }

    private static LLMEngine Engine(ReferenceSamplingDevice? device, UsageContext usage, int? budget = null) => new(new EngineArgs
    {
        Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 64, MaxModelLen = 256, UsageContext = usage, MaxNumBatchedTokens = budget,
        Device = device?.Device ?? "cpu", BackendProviders = device != null ? [device] : [],
    });

    [Fact]
    public void TheEngineTakesItsDevicesDefaultUnlessOneWasAskedFor()
    {
        var device = new ReferenceSamplingDevice { BatchDefaults = usage => usage == UsageContext.OpenAIApiServer ? 96 : 160 };
        using (var served = Engine(device, UsageContext.OpenAIApiServer))
            Assert.Equal((96, 96), (served.Args.MaxNumBatchedTokens, served.KvCacheInfo.MaxNumBatchedTokens));
        using (var offline = Engine(device, UsageContext.LlmClass))
            Assert.Equal((160, 160), (offline.Args.MaxNumBatchedTokens, offline.KvCacheInfo.MaxNumBatchedTokens));
        using (var asked = Engine(device, UsageContext.OpenAIApiServer, budget: 40))
            Assert.Equal((40, 40), (asked.Args.MaxNumBatchedTokens, asked.KvCacheInfo.MaxNumBatchedTokens));
        using var cpu = Engine(null, UsageContext.LlmClass);
        Assert.Equal(EngineArgs.DefaultMaxNumBatchedTokens, cpu.Args.ResolvedMaxNumBatchedTokens);
        Assert.Equal(EngineArgs.DefaultMaxNumBatchedTokens, cpu.KvCacheInfo.MaxNumBatchedTokens);
    }

    [Fact]
    public void StepsComputeNoMoreThanTheDefaultBudget()
    {
        // A 96-token budget prefills a 200-token prompt in three steps (96, 96, 8); the 2048 of the CPU's default in one.
        var device = new ReferenceSamplingDevice { BatchDefaults = _ => 96 };
        foreach (var (engine, steps) in new[] { (Engine(device, UsageContext.OpenAIApiServer), 3), (Engine(null, UsageContext.OpenAIApiServer), 1) })
        {
            using (engine)
            {
                engine.AddRequest("a", PromptInput.FromTokenIds([.. Enumerable.Range(100, 200)]), new SamplingParams { MaxTokens = 1 });
                int n = 0;
                while (engine.HasUnfinishedRequests)
                    (_, n) = (engine.Step(), n + 1);
                Assert.Equal(steps, n);
            }
        }
    }
}
