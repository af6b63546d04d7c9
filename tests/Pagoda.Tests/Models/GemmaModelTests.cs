using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Models;

/// <summary>
/// What the Gemma goldens do not show on their own: the LM head's final soft cap, and how the models meet a backend
/// that samples on the device (Gemma 2's cap is a backend op, so the device sampler reads capped logits).
/// </summary>
public class GemmaModelTests
{
    [Fact]
    public void SoftCappedHeadGivesCapTimesTanhOfEachLogit()
    {
        using var backend = new CpuBackend();
        using var weight = CpuTensor.Allocate([300, 8]);
        using var hidden = CpuTensor.Allocate([2, 8]);
        var rng = new Random(9);
        foreach (ref float v in weight.F32)
            v = (float)(rng.NextDouble() * 40 - 20);   // logits well past the cap, so it bends them
        foreach (ref float v in hidden.F32)
            v = (float)(rng.NextDouble() * 4 - 2);
        var batch = new ForwardBatch([], [], [], [], [0], [], [1, 0]);
        var plain = new LmHead(backend, weight).Project(hidden, batch).ToArray();
        var capped = new LmHead(backend, weight, softCap: 30f).Project(hidden, batch);
        Assert.Contains(plain, l => Math.Abs(l) > 30);
        Assert.Equal(plain.Select(l => MathF.Tanh(l / 30f) * 30f).ToArray(), capped);
    }

    [Theory]
    [InlineData("tiny-gemma2")]   // its final cap runs on the backend, before the device sampler reads the logits
    [InlineData("tiny-gemma3")]
    public void SamplesOnTheDeviceLikeOnTheHost(string model)
    {
        var device = new ReferenceSamplingDevice();
        using var llm = new LLM(new EngineArgs
        {
            Model = TestPaths.Model(model), MaxModelLen = 512, Device = device.Device, BackendProviders = [device],
        });
        var g = Golden.Load(model, "ids", 2);   // 40 prompt tokens: past the 32-token window
        var output = llm.Generate([PromptInput.FromTokenIds(g.PromptIds)],
            new SamplingParams { Temperature = 0, MaxTokens = g.OutputIds.Length, StopTokenIds = [8192, 8194] })[0];
        Assert.Equal(g.OutputIds, output.Outputs[0].TokenIds);
        Assert.True(device.Reduced > 0);
    }
}
