using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>`--load-format dummy`: random weights of the config's shapes, no weight files needed.</summary>
public class DummyWeightsTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 4, IgnoreEos = true };

    [Fact]
    public void ConfigOnlyFolderRunsWithDummyWeights()
    {
        using var m = new TempModel("tiny-llama");
        File.Delete(m.File("model.safetensors"));
        var args = new EngineArgs { Model = m.Dir, LoadFormat = "dummy" };
        using var a = new LLM(args);
        using var b = new LLM(args);
        var x = a.Generate([PromptInput.FromTokenIds([1, 2, 3])], Greedy)[0].Outputs[0].TokenIds;
        Assert.Equal(4, x.Count);
        Assert.All(x, id => Assert.InRange(id, 0, 8255));
        // The same seed gives the same weights, so the same tokens.
        Assert.Equal(x, b.Generate([PromptInput.FromTokenIds([1, 2, 3])], Greedy)[0].Outputs[0].TokenIds);
    }

    [Fact]
    public void DummyStoreMakesTheRequestedShapesInTheConfigDType()
    {
        using var store = WeightStore.CreateDummy("/nowhere", Pagoda.Backends.DType.BF16);
        var (file, info) = store.Get("w", 3, 5);
        Assert.Equal([3, 5], info.Shape);
        Assert.Equal(30, info.Length);
        Assert.Same(info, store.Get("w", 3, 5).Info);
    }

    [Fact]
    public void ExplicitFormatWithoutItsFilesIsAClearError()
    {
        var e = Assert.Throws<ModelLoadException>(() => new LLM(new EngineArgs { Model = TestPaths.Model("tiny-qwen3"), LoadFormat = "pt" }));
        Assert.Contains("--load-format pt needs pytorch_model.bin.index.json or pytorch_model.bin", e.Message);
        Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs { Model = TestPaths.Model("tiny-qwen3"), LoadFormat = "gguf" }));
    }
}
