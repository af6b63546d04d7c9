using System.Text.Json.Nodes;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>The same weights stored sharded, or as float32, give exactly the same generation.</summary>
public class WeightFormatTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 8, Logprobs = 3, IgnoreEos = true };

    private static CompletionOutput Run(string dir)
    {
        using var llm = new LLM(dir);
        return llm.Generate([PromptInput.FromTokenIds([5, 17, 300, 4000])], Greedy)[0].Outputs[0];
    }

    /// <summary>Splits the model's tensors over two shards with an index, optionally widening to F32.</summary>
    private static void Reshard(TempModel m, bool toF32)
    {
        var entries = SafeTensorsWriter.ReadAll(m.File("model.safetensors"));
        if (toF32)
            entries = entries.Select(SafeTensorsWriter.ToF32).ToList();
        File.Delete(m.File("model.safetensors"));
        var shards = new[] { entries.Where((_, i) => i % 2 == 0), entries.Where((_, i) => i % 2 == 1) };
        var map = new JsonObject();
        for (int s = 0; s < 2; s++)
        {
            string name = $"model-0000{s + 1}-of-00002.safetensors";
            SafeTensorsWriter.Write(m.File(name), shards[s]);
            foreach (var e in shards[s])
                map[e.Name] = name;
        }
        File.WriteAllText(m.File("model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
    }

    [Theory]
    [InlineData("tiny-llama", false)]
    [InlineData("tiny-llama", true)]
    [InlineData("tiny-opt", true)]
    public void ShardedAndF32WeightsGenerateIdentically(string model, bool toF32)
    {
        var expected = Run(TestPaths.Model(model));
        using var m = new TempModel(model);
        Reshard(m, toF32);
        var actual = Run(m.Dir);
        Assert.Equal(expected.TokenIds, actual.TokenIds);
        Assert.Equal(expected.Logprobs!.Select(l => l.Logprob), actual.Logprobs!.Select(l => l.Logprob));
    }

    [Fact]
    public void IndexNamingAMissingShard()
    {
        using var m = new TempModel("tiny-qwen3");
        Reshard(m, toF32: false);
        File.Delete(m.File("model-00002-of-00002.safetensors"));
        var e = Assert.Throws<ModelLoadException>(() => new LLM(m.Dir));
        Assert.Contains("model-00002-of-00002.safetensors: file not found", e.Message);
    }

    [Fact]
    public void IndexListingATensorTheShardLacks()
    {
        using var m = new TempModel("tiny-qwen3");
        Reshard(m, toF32: false);
        var index = JsonNode.Parse(File.ReadAllText(m.File("model.safetensors.index.json")))!;
        index["weight_map"]!["model.ghost.weight"] = "model-00001-of-00002.safetensors";
        File.WriteAllText(m.File("model.safetensors.index.json"), index.ToJsonString());
        var e = Assert.Throws<ModelLoadException>(() => new LLM(m.Dir));
        Assert.Contains("'model.ghost.weight' listed in the index is not in this shard", e.Message);
    }
}
