using System.Text.Json.Nodes;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>
/// Sliding windows, per-layer attention types, partial rotary and the yarn / longrope parameters read from
/// config.json: the fixtures as they are, hand-edited variants, and both config styles.
/// </summary>
public class WindowAndRopeConfigTests
{
    private const string Sliding = ModelConfig.SlidingAttention, Full = ModelConfig.FullAttention;

    // A fixture's config.json edited in memory, written to a temporary file and read back.
    private static ModelConfig Read(string model, Action<JsonObject>? edit = null)
    {
        var o = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Model(model), "config.json")))!.AsObject();
        edit?.Invoke(o);
        string path = Path.Combine(Path.GetTempPath(), $"pagoda-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, o.ToJsonString());
        try
        {
            return ConfigReader.Read(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string Fails(string model, Action<JsonObject> edit) =>
        Assert.Throws<ModelLoadException>(() => Read(model, edit)).Message;

    // rope_parameters (newer style) rewritten as top-level rope_theta / partial_rotary_factor plus rope_scaling.
    private static void ToClassicStyle(JsonObject o)
    {
        var rp = o["rope_parameters"]!.AsObject();
        o.Remove("rope_parameters");
        o["rope_theta"] = rp["rope_theta"]!.GetValue<double>();
        rp.Remove("rope_theta");
        if (rp["partial_rotary_factor"] is { } partial)
        {
            o["partial_rotary_factor"] = partial.GetValue<double>();
            rp.Remove("partial_rotary_factor");
        }
        if (rp["rope_type"]!.GetValue<string>() != "default")
            o["rope_scaling"] = rp.DeepClone();
    }

    [Fact]
    public void MistralSlidesEveryLayer()
    {
        var c = Read("tiny-mistral");
        Assert.Equal("MistralForCausalLM", c.Architecture);
        Assert.Equal(48, c.SlidingWindow);
        Assert.Equal([Sliding, Sliding], c.LayerTypes);
        Assert.True(c.IsSlidingLayer(0) && c.IsSlidingLayer(1));
        Assert.Equal((4, 1, 32), (c.NumHeads, c.NumKvHeads, c.HeadDim));
        Assert.False(c.QkvBias || c.OutputBias);
    }

    [Fact]
    public void MistralWindowNullDisablesItAndAbsentMeans4096()
    {
        var off = Read("tiny-mistral", o => o["sliding_window"] = null);
        Assert.Equal(0, off.SlidingWindow);
        Assert.Equal([Full, Full], off.LayerTypes);
        Assert.False(off.IsSlidingLayer(0));
        // MistralConfig's default when the key is missing altogether.
        Assert.Equal(4096, Read("tiny-mistral", o => o.Remove("sliding_window")).SlidingWindow);
    }

    [Fact]
    public void Phi3HasPartialRotaryAndNoWindow()
    {
        var c = Read("tiny-phi3");
        Assert.Equal("Phi3ForCausalLM", c.Architecture);
        Assert.Equal(0.75, c.PartialRotaryFactor);
        Assert.Equal(24, c.RotaryDim);
        Assert.Equal(0, c.SlidingWindow);
        Assert.Equal([Full, Full], c.LayerTypes);
        Assert.Null(c.RopeScaling);
    }

    [Theory]
    [InlineData("tiny-mistral")]
    [InlineData("tiny-phi3")]
    public void BiasKeysAreIgnoredWhereTransformersHasNone(string model)
    {
        var c = Read(model, o => { o["attention_bias"] = true; o["mlp_bias"] = true; });
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias);
    }

    [Fact]
    public void Phi3WindowSlidesEveryLayer() =>
        Assert.Equal([Sliding, Sliding], Read("tiny-phi3", o => o["sliding_window"] = 2047).LayerTypes);

    [Fact]
    public void Qwen2YarnReadsExplicitFactorAndDefaults()
    {
        var c = Read("tiny-qwen2-yarn");
        var s = c.RopeScaling!;
        Assert.Equal(("yarn", 4.0, 64), (s.Type, s.Factor, s.OriginalMaxPositionEmbeddings));
        Assert.Equal((32.0, 1.0, true), (s.BetaFast, s.BetaSlow, s.Truncate));
        Assert.Null(s.AttentionFactor);
        Assert.Null(s.Mscale);
        Assert.Equal(1e6, c.RopeTheta);
        Assert.Equal(32, c.RotaryDim);
        Assert.Equal(0, c.SlidingWindow); // use_sliding_window is false
        Assert.Equal([Full, Full], c.LayerTypes);
    }

    [Fact]
    public void YarnOptionalKeys()
    {
        var s = Read("tiny-qwen2-yarn", o =>
        {
            var rp = o["rope_parameters"]!.AsObject();
            rp["factor"] = 32.0;
            rp["beta_fast"] = 16.0;
            rp["beta_slow"] = 2.0;
            rp["truncate"] = false;
            rp["mscale"] = 0.707;
            rp["mscale_all_dim"] = 1.0;
            rp["attention_factor"] = 1.5;
        }).RopeScaling!;
        Assert.Equal((32.0, 16.0, 2.0, false), (s.Factor, s.BetaFast, s.BetaSlow, s.Truncate));
        Assert.Equal(0.707, s.Mscale);
        Assert.Equal(1.0, s.MscaleAllDim);
        Assert.Equal(1.5, s.AttentionFactor);
        // transformers reads beta_fast / beta_slow with Python's `or`: 0 falls back to the defaults.
        var zero = Read("tiny-qwen2-yarn", o => { o["rope_parameters"]!["beta_fast"] = 0; o["rope_parameters"]!["beta_slow"] = 0; }).RopeScaling!;
        Assert.Equal((32.0, 1.0), (zero.BetaFast, zero.BetaSlow));
    }

    [Fact]
    public void YarnWithoutFactorUsesTheContextRatio()
    {
        var s = Read("tiny-qwen2-yarn", o => o["rope_parameters"]!.AsObject().Remove("factor")).RopeScaling!;
        Assert.Equal(4096.0 / 64, s.Factor);
    }

    [Theory]
    [InlineData("tiny-qwen2-yarn")]
    [InlineData("tiny-phi3")]
    [InlineData("tiny-mistral")]
    public void BothStylesGiveTheSameConfig(string model) =>
        Assert.Equal(Read(model) with { EosTokenIds = [] }, Read(model, ToClassicStyle) with { EosTokenIds = [] });

    [Fact]
    public void Qwen2SlidesFromMaxWindowLayersWhenEnabled()
    {
        var c = Read("tiny-qwen2-yarn", o =>
        {
            o.Remove("layer_types");
            o["use_sliding_window"] = true;
            o["sliding_window"] = 40;
            o["max_window_layers"] = 1;
        });
        Assert.Equal(40, c.SlidingWindow);
        Assert.Equal([Full, Sliding], c.LayerTypes);
        Assert.False(c.IsSlidingLayer(0));
        Assert.True(c.IsSlidingLayer(1));
        // The default max_window_layers (28) leaves both layers of a two-layer model full.
        Assert.Equal([Full, Full], Read("tiny-qwen2-yarn", o =>
        {
            o.Remove("layer_types");
            o.Remove("max_window_layers");
            o["use_sliding_window"] = true;
            o["sliding_window"] = 40;
        }).LayerTypes);
    }

    [Fact]
    public void ExplicitLayerTypesWinWhenAWindowIsOn()
    {
        var c = Read("tiny-qwen2-yarn", o =>
        {
            o["use_sliding_window"] = true;
            o["sliding_window"] = 40;
            o["layer_types"] = new JsonArray(Sliding, Full);
        });
        Assert.Equal([Sliding, Full], c.LayerTypes);
        // Without use_sliding_window transformers drops the window, whatever layer_types says.
        var off = Read("tiny-qwen2-yarn", o => o["layer_types"] = new JsonArray(Sliding, Full));
        Assert.Equal(0, off.SlidingWindow);
        Assert.Equal([Full, Full], off.LayerTypes);
    }

    [Fact]
    public void BadLayerTypesAreNamed()
    {
        Assert.Contains("'layer_types' has 1 entries for 2 layers",
            Fails("tiny-mistral", o => o["layer_types"] = new JsonArray(Sliding)));
        Assert.Contains("unsupported layer type 'linear_attention'",
            Fails("tiny-mistral", o => o["layer_types"] = new JsonArray(Sliding, "linear_attention")));
        Assert.Contains("'sliding_window' must be positive", Fails("tiny-mistral", o => o["sliding_window"] = 0));
    }

    // Phi-3.5 / Phi-4-mini style: classic rope_scaling with the two lists, original_max_position_embeddings on top.
    private static void LongRope(JsonObject o, int listLength = 12)
    {
        o["max_position_embeddings"] = 16384;
        o["rope_scaling"] = new JsonObject
        {
            ["type"] = "longrope",
            ["short_factor"] = new JsonArray(Enumerable.Range(0, listLength).Select(i => (JsonNode)(1.0 + i / 100.0)).ToArray()),
            ["long_factor"] = new JsonArray(Enumerable.Range(0, listLength).Select(i => (JsonNode)(1.0 + i)).ToArray()),
        };
        o["rope_theta"] = 10000.0;
        o.Remove("rope_parameters");
    }

    [Fact]
    public void LongRopeListsAndOriginalLength()
    {
        var c = Read("tiny-phi3", o => LongRope(o));
        var s = c.RopeScaling!;
        Assert.Equal(("longrope", 4096), (s.Type, s.OriginalMaxPositionEmbeddings));
        Assert.Equal(16384.0 / 4096, s.Factor); // no explicit factor: max_position_embeddings / original
        Assert.Equal(12, s.ShortFactor!.Count);
        Assert.Equal(1.11, s.ShortFactor[11], 12);
        Assert.Equal(12.0, s.LongFactor![11]);
        Assert.Null(s.AttentionFactor);
        Assert.Equal(0.75, c.PartialRotaryFactor); // the classic top-level key
    }

    [Fact]
    public void LongRopeInRopeParametersStyleReadsTheSame()
    {
        var classic = Read("tiny-phi3", o => LongRope(o));
        var nested = Read("tiny-phi3", o =>
        {
            LongRope(o);
            var rp = o["rope_scaling"]!.DeepClone().AsObject();
            o.Remove("rope_scaling");
            rp.Remove("type");
            rp["rope_type"] = "longrope";
            rp["rope_theta"] = o["rope_theta"]!.GetValue<double>();
            rp["partial_rotary_factor"] = o["partial_rotary_factor"]!.GetValue<double>();
            rp["original_max_position_embeddings"] = o["original_max_position_embeddings"]!.GetValue<int>();
            o.Remove("rope_theta");
            o.Remove("partial_rotary_factor");
            o.Remove("original_max_position_embeddings");
            o["rope_parameters"] = rp;
        });
        Assert.Equal(classic with { EosTokenIds = [] }, nested with { EosTokenIds = [] });
    }

    [Fact]
    public void LongRopeListsMustCoverTheRotaryDimension()
    {
        // Rotary dimension 24 (head 32 · 0.75) needs 12 factors per list.
        Assert.Contains("longrope 'short_factor' has 16 entries, the rotary dimension 24 needs 12",
            Fails("tiny-phi3", o => LongRope(o, 16)));
        Assert.Contains("longrope rope scaling needs 'long_factor'",
            Fails("tiny-phi3", o => { LongRope(o); o["rope_scaling"]!.AsObject().Remove("long_factor"); }));
    }

    [Fact]
    public void PartialRotaryMustRotateAnEvenPart() =>
        Assert.Contains("partial_rotary_factor 0.6 must rotate", Fails("tiny-phi3", o => o["rope_parameters"]!["partial_rotary_factor"] = 0.6));
}
