using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Backends;

/// <summary>
/// Stacked q/k/v and gate/up on the CPU (one dispatch each, bias + RoPE + KV store and SiLU·mul on the
/// stacked output) must give the same bits as the separate projections, for a prompt and the decode
/// step after it, in bf16-as-stored and int8. fortune-chat is Qwen2, so the q/k/v biases are exercised; tiny-phi3
/// stores q/k/v and gate/up fused, so the separate path reads row views of them; tiny-mistral's prompt crosses its
/// sliding window.
/// </summary>
public class CpuMergedProjectionTests
{
    [Theory]
    [InlineData("fortune-chat", null)]
    [InlineData("fortune-chat", "int8")]
    [InlineData("tiny-phi3", null)]
    [InlineData("tiny-phi3", "int8")]
    [InlineData("tiny-mistral", null)]
    public void StackedProjectionsGiveTheSameLogitsAsSeparateOnes(string model, string? quantization)
    {
        var stacked = Run(model, stacks: true, quantization);
        var separate = Run(model, stacks: false, quantization);
        Assert.Equal(separate.Prompt, stacked.Prompt);
        Assert.Equal(separate.Decode, stacked.Decode);
    }

    private static (float[] Prompt, float[] Decode) Run(string name, bool stacks, string? quantization)
    {
        string folder = TestPaths.Model(name);
        var config = ModelFolder.Open(folder).Config;
        using var store = WeightStore.Open(folder);
        using var cpu = new CpuBackend();
        // Seen through IBackend alone, the same backend offers no stacked projections.
        IBackend backend = stacks ? cpu : new OpsOnly(cpu);
        using var model = ModelRegistry.Create(config, store, backend, quantization);
        const int blockSize = 16, promptLen = 60;
        var cache = backend.AllocateKvCache(config.NumLayers, 4, blockSize, model.KvWidth);
        int[] table = [3, 1, 0, 2];
        int Slot(int pos) => table[pos / blockSize] * blockSize + pos % blockSize;
        int[] ids = Enumerable.Range(0, promptLen).Select(i => (i * 37 + 11) % config.VocabSize).ToArray();
        int[] positions = Enumerable.Range(0, promptLen).ToArray();
        var prompt = model.Forward(new ForwardBatch(ids, positions, positions.Select(Slot).ToArray(), [table], [0, promptLen],
            [promptLen], positions), cache).ToArray();   // the model's output is valid until its next forward
        var decode = model.Forward(new ForwardBatch([42], [promptLen], [Slot(promptLen)], [table], [0, 1], [promptLen + 1], [0]), cache);
        return (prompt, decode);
    }
}
