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
    public unsafe void AShardIsMadeAloneWithTheWholeTensorsValues()
    {
        // A tensor-parallel rank asks for rows, a range, columns or runs of a tensor: each holds what the whole tensor
        // holds there, and the whole tensor is never made (a 70B-shaped dummy model would fill each rank's host memory).
        foreach (var dtype in new[] { Pagoda.Backends.DType.F32, Pagoda.Backends.DType.BF16 })
        {
            using var parts = WeightStore.CreateDummy("/nowhere", dtype);
            var rows = parts.ViewRows("w", [6, 5], 2, 3);
            var range = parts.ViewRange("b", 7, 3, 4);
            var cols = parts.CopyColumns("o", [4, 6], 1, 3);
            var runs = parts.CopyRuns("e", [2, 3, 4], 4, 2, 2, [2, 3, 2]);
            Assert.Empty(parts.Files[0].Tensors);
            using var whole = WeightStore.CreateDummy("/nowhere", dtype);
            int size = Pagoda.Backends.DTypes.SizeOf(dtype);
            byte[] Bytes(Pagoda.Backends.HostWeight h) => new ReadOnlySpan<byte>((void*)h.Data, h.Shape.Aggregate(1, (a, b) => a * b) * size).ToArray();
            byte[] Pick(Pagoda.Backends.HostWeight h, IEnumerable<int> indices)
            {
                var all = Bytes(h);
                return [.. indices.SelectMany(i => all.Skip(i * size).Take(size))];
            }
            Assert.Equal(Pick(whole.View("w", 6, 5), Enumerable.Range(10, 15)), Bytes(rows));
            Assert.Equal(Pick(whole.View("b", 7), Enumerable.Range(3, 4)), Bytes(range));
            Assert.Equal(Pick(whole.View("o", 4, 6), from r in Enumerable.Range(0, 4) from c in Enumerable.Range(1, 3) select r * 6 + c), Bytes(cols));
            Assert.Equal(Pick(whole.View("e", 2, 3, 4), from r in Enumerable.Range(0, 6) from c in Enumerable.Range(2, 2) select r * 4 + c), Bytes(runs));
            Assert.Equal([3, 5], rows.Shape);
            Assert.Equal([2, 3, 2], runs.Shape);
        }
    }

    [Fact]
    public void ExplicitFormatWithoutItsFilesIsAClearError()
    {
        var e = Assert.Throws<ModelLoadException>(() => new LLM(new EngineArgs { Model = TestPaths.Model("tiny-qwen3"), LoadFormat = "pt" }));
        Assert.Contains("--load-format pt needs pytorch_model.bin.index.json or pytorch_model.bin", e.Message);
        Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs { Model = TestPaths.Model("tiny-qwen3"), LoadFormat = "gguf" }));
    }
}
