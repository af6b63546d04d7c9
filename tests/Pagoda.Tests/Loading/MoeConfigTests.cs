using System.Text.Json.Nodes;
using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>The MoE fields of the three families' configs, Qwen3-MoE's dense-layer pattern, and a model with one.</summary>
public class MoeConfigTests
{
    [Fact]
    public void ReadsQwen3MoeAndMixtral()
    {
        var q = ModelFolder.Open(TestPaths.Model("tiny-qwen3-moe")).Config;
        Assert.True(q.QkNorm);
        var qm = q.Moe!;
        Assert.Equal((8, 2, 64, true, MoeScoring.SoftmaxTopK, MoeActivation.SiluGated), (qm.NumExperts, qm.TopK, qm.IntermediateSize, qm.NormTopkProb, qm.Scoring, qm.Activation));
        Assert.False(qm.RouterBias || qm.StackedExperts || qm.AttentionSinks);
        Assert.Empty(qm.DenseLayers);

        var m = ModelFolder.Open(TestPaths.Model("tiny-mixtral")).Config;
        Assert.Equal((32, 256), (m.HeadDim, m.IntermediateSize));
        var mm = m.Moe!;
        Assert.Equal((4, 2, 256, true, MoeScoring.SoftmaxTopK, MoeActivation.SiluGated), (mm.NumExperts, mm.TopK, mm.IntermediateSize, mm.NormTopkProb, mm.Scoring, mm.Activation));
        Assert.False(mm.RouterBias || mm.StackedExperts || mm.AttentionSinks);
        Assert.Equal((0, 0), (mm.SlidingWindow, mm.DenseLayers.Count));
    }

    // Read directly: the whole config needs yarn RoPE, which ConfigReader does not read yet on this branch.
    [Fact]
    public void ReadsGptOss()
    {
        string path = Path.Combine(TestPaths.Model("tiny-gpt-oss"), "config.json");
        var moe = MoeConfig.Read(new JsonFields(path, JsonFile.ReadObject(path)), "GptOssForCausalLM", 2)!;
        Assert.Equal((4, 2, 128), (moe.NumExperts, moe.TopK, moe.IntermediateSize));
        Assert.Equal((MoeScoring.TopKSoftmax, false, MoeActivation.ClampedSwiglu, 7f), (moe.Scoring, moe.NormTopkProb, moe.Activation, moe.SwigluLimit));
        Assert.True(moe.RouterBias && moe.StackedExperts && moe.AttentionSinks);
        Assert.Equal(32, moe.SlidingWindow);
        Assert.Equal(["sliding_attention", "full_attention"], moe.LayerTypes);
    }

    [Theory]
    [InlineData(1, new int[0], new int[0])]
    [InlineData(2, new int[0], new[] { 0 })]       // only every second layer is sparse
    [InlineData(1, new[] { 1 }, new[] { 1 })]      // mlp_only_layers
    public void Qwen3MoeDenseLayersFollowSparseStepAndMlpOnlyLayers(int step, int[] mlpOnly, int[] dense)
    {
        using var m = new TempModel("tiny-qwen3-moe");
        m.EditConfig(o =>
        {
            o["decoder_sparse_step"] = step;
            o["mlp_only_layers"] = new JsonArray(mlpOnly.Select(l => (JsonNode?)l).ToArray());
        });
        Assert.Equal(dense, ModelFolder.Open(m.Dir).Config.Moe!.DenseLayers);
    }

    [Fact]
    public void AQwen3MoeWithADenseLayerRuns()
    {
        using var m = new TempModel("tiny-qwen3-moe");
        File.Delete(m.File("model.safetensors"));
        m.EditConfig(o => o["mlp_only_layers"] = new JsonArray(0));
        using var llm = new LLM(new EngineArgs { Model = m.Dir, LoadFormat = "dummy" });
        var ids = llm.Generate([PromptInput.FromTokenIds([1, 2, 3, 4, 5])], new SamplingParams { Temperature = 0, MaxTokens = 4, IgnoreEos = true })[0]
            .Outputs[0].TokenIds;
        Assert.Equal(4, ids.Count);
        Assert.All(ids, id => Assert.InRange(id, 0, 8255));
    }

    [Fact]
    public void TopKAboveTheExpertCountIsNamed()
    {
        using var m = new TempModel("tiny-mixtral");
        m.EditConfig(o => o["num_experts_per_tok"] = 5);
        var e = Assert.Throws<ModelLoadException>(() => ModelFolder.Open(m.Dir));
        Assert.Contains("num_experts_per_tok 5 with 4 experts", e.Message);
    }
}
