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
        Assert.Equal((0, 0), (m.SlidingWindow, mm.DenseLayers.Count));
    }

    [Fact]
    public void ReadsGptOss()
    {
        var c = ModelFolder.Open(TestPaths.Model("tiny-gpt-oss")).Config;
        Assert.True(c.QkvBias && c.OutputBias && !c.QkNorm);
        Assert.Equal(32, c.SlidingWindow);
        Assert.Equal(["sliding_attention", "full_attention"], c.LayerTypes);
        Assert.Equal("yarn", c.RopeScaling!.Type);
        var moe = c.Moe!;
        Assert.Equal((4, 2, 128), (moe.NumExperts, moe.TopK, moe.IntermediateSize));
        Assert.Equal((MoeScoring.TopKSoftmax, false, MoeActivation.ClampedSwiglu, 7f), (moe.Scoring, moe.NormTopkProb, moe.Activation, moe.SwigluLimit));
        Assert.True(moe.RouterBias && moe.StackedExperts && moe.AttentionSinks);
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

    // As the config classes decide it: gpt-oss alternates from a sliding first layer (window 128 when absent),
    // Mixtral slides every layer when sliding_window is set, Qwen3-MoE every layer under use_sliding_window.
    [Theory]
    [InlineData("tiny-gpt-oss", "{\"layer_types\": null}", 32, "sliding_attention,full_attention")]
    [InlineData("tiny-gpt-oss", "{\"layer_types\": null, \"sliding_window\": \"absent\"}", 128, "sliding_attention,full_attention")]
    [InlineData("tiny-mixtral", "{\"sliding_window\": 16}", 16, "sliding_attention,sliding_attention")]
    [InlineData("tiny-qwen3-moe", "{\"sliding_window\": 16}", 0, "full_attention,full_attention")]
    [InlineData("tiny-qwen3-moe", "{\"sliding_window\": 16, \"use_sliding_window\": true}", 16, "sliding_attention,sliding_attention")]
    public void SlidingLayersFollowEachFamilysRule(string model, string edits, int window, string layerTypes)
    {
        using var m = new TempModel(model);
        m.EditConfig(o =>
        {
            foreach (var (key, value) in JsonNode.Parse(edits)!.AsObject())
            {
                if (value?.ToString() == "absent")
                    o.Remove(key);
                else
                    o[key] = value?.DeepClone();
            }
        });
        var c = ModelFolder.Open(m.Dir).Config;
        Assert.Equal(window, c.SlidingWindow);
        Assert.Equal(layerTypes.Split(','), c.LayerTypes);
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
