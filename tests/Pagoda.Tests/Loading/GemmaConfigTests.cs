using System.Text.Json.Nodes;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>
/// Gemma 2 / Gemma 3 config.json fields in both Hub styles: soft caps (and their per-family defaults), the score
/// scalar, sliding window and layer types (listed, or from the old fixed pattern), and Gemma 3's local and global RoPE.
/// </summary>
public class GemmaConfigTests
{
    private const string Sliding = ModelConfig.SlidingAttention, Full = ModelConfig.FullAttention;

    private static ModelConfig Fixture(string model) => ModelFolder.Open(TestPaths.Model(model)).Config;

    private static ModelConfig Edited(string model, Action<JsonObject> edit)
    {
        using var m = new TempModel(model);
        m.EditConfig(edit);
        return ModelFolder.Open(m.Dir).Config;
    }

    // Records compare lists by reference: compare the layer types separately.
    private static ModelConfig WithoutLists(ModelConfig c) => c with { EosTokenIds = [], LayerTypes = [] };

    [Fact]
    public void SupportedArchitecturesListBothGemmas()
    {
        Assert.Contains("Gemma2ForCausalLM", ConfigReader.SupportedArchitectures);
        Assert.Contains("Gemma3ForCausalLM", ConfigReader.SupportedArchitectures);
    }

    [Fact]
    public void TinyGemma2()
    {
        var c = Fixture("tiny-gemma2");
        Assert.Equal("Gemma2ForCausalLM", c.Architecture);
        Assert.Equal((128, 4, 2, 1, 64, 384, 8256), (c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim, c.IntermediateSize, c.VocabSize));
        Assert.True(c.TieWordEmbeddings && !c.QkNorm && !c.QkvBias);
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        var g = c.Gemma!;
        Assert.Equal((64.0, 50.0, 30.0, 32), (g.QueryPreAttnScalar, g.AttnLogitSoftcapping, g.FinalLogitSoftcapping, c.SlidingWindow));
        Assert.Equal([Sliding, Full, Sliding, Full], c.LayerTypes);
        Assert.True(c.IsSlidingLayer(0) && !c.IsSlidingLayer(1));
        Assert.Equal(10000.0, g.LocalRopeTheta);
    }

    [Fact]
    public void TinyGemma3()
    {
        var c = Fixture("tiny-gemma3");
        Assert.Equal("Gemma3ForCausalLM", c.Architecture);
        Assert.True(c.QkNorm && c.TieWordEmbeddings);
        Assert.Equal(1_000_000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        var g = c.Gemma!;
        Assert.Equal((64.0, 0.0, 0.0, 32), (g.QueryPreAttnScalar, g.AttnLogitSoftcapping, g.FinalLogitSoftcapping, c.SlidingWindow));
        Assert.Equal([Sliding, Sliding, Sliding, Sliding, Sliding, Full], c.LayerTypes);
        Assert.Equal(10_000.0, g.LocalRopeTheta);
        Assert.Null(g.LocalRopeScaling);
    }

    [Fact]
    public void ClassicGemma3ConfigReadsLikeTheNewerOne()
    {
        // The style of google/gemma-3-1b-it's config.json: flat bases, a pattern instead of layer_types.
        var classic = Edited("tiny-gemma3", o =>
        {
            o.Remove("rope_parameters");
            o.Remove("layer_types");
            o.Remove("_sliding_window_pattern");
            o["rope_theta"] = 1_000_000.0;
            o["rope_local_base_freq"] = 10_000.0;
            o["rope_scaling"] = null;
            o["sliding_window_pattern"] = 6;
        });
        var newer = Fixture("tiny-gemma3");
        Assert.Equal(WithoutLists(newer), WithoutLists(classic));
        Assert.Equal(newer.LayerTypes, classic.LayerTypes);
    }

    [Fact]
    public void Gemma3RopeScalingAppliesToGlobalLayersOnly()
    {
        // Classic: rope_scaling belongs to the global RoPE (Gemma 3 4B and larger use linear 8).
        var classic = Edited("tiny-gemma3", o =>
        {
            o.Remove("rope_parameters");
            o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 };
            o["rope_local_base_freq"] = 20_000.0;
        });
        Assert.Equal(new RopeScaling("linear", 8.0), classic.RopeScaling);
        Assert.Equal(1_000_000.0, classic.RopeTheta);
        Assert.Null(classic.Gemma!.LocalRopeScaling);
        Assert.Equal(20_000.0, classic.Gemma.LocalRopeTheta);

        // Newer: one rope_parameters object per layer type.
        var newer = Edited("tiny-gemma3", o =>
        {
            o["rope_parameters"] = new JsonObject
            {
                [Full] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0, ["rope_theta"] = 500_000.0 },
                [Sliding] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 5_000.0 },
            };
        });
        Assert.Equal((500_000.0, new RopeScaling("linear", 8.0)), (newer.RopeTheta, newer.RopeScaling));
        Assert.Equal((5_000.0, (RopeScaling?)null), (newer.Gemma!.LocalRopeTheta, newer.Gemma.LocalRopeScaling));
    }

    [Fact]
    public void Gemma2DefaultsAndTheOldAlternation()
    {
        // No layer_types: layers alternate, sliding first. No cap keys: Gemma 2's defaults; an explicit null: none.
        var c = Edited("tiny-gemma2", o =>
        {
            o.Remove("layer_types");
            o.Remove("attn_logit_softcapping");
            o["final_logit_softcapping"] = null;
            o.Remove("query_pre_attn_scalar");
            o["hidden_act"] = "gelu_pytorch_tanh";   // Hub Gemma 2 configs carry both names
        });
        var g = c.Gemma!;
        Assert.Equal([Sliding, Full, Sliding, Full], c.LayerTypes);
        Assert.Equal((50.0, 0.0, 256.0), (g.AttnLogitSoftcapping, g.FinalLogitSoftcapping, g.QueryPreAttnScalar));
    }

    [Fact]
    public void Gemma3PatternComesFromTheConfig()
    {
        var c = Edited("tiny-gemma3", o =>
        {
            o.Remove("layer_types");
            o.Remove("_sliding_window_pattern");
            o["sliding_window_pattern"] = 3;
        });
        Assert.Equal([Sliding, Sliding, Full, Sliding, Sliding, Full], c.LayerTypes);
    }

    [Theory]
    [InlineData("hidden_activation", "\"gelu\"", "hidden_activation")]
    [InlineData("layer_types", "[\"sliding_attention\"]", "layer_types")]
    [InlineData("layer_types", "[\"sliding_attention\", \"global\", \"sliding_attention\", \"full_attention\"]", "layer_types")]
    [InlineData("use_bidirectional_attention", "true", "bidirectional")]
    [InlineData("attention_bias", "true", "attention_bias")]
    public void UnsupportedValuesNameTheKey(string key, string json, string inMessage)
    {
        var e = Assert.Throws<ModelLoadException>(() => Edited("tiny-gemma2", o => o[key] = JsonNode.Parse(json)));
        Assert.Contains(inMessage, e.Message);
    }
}
