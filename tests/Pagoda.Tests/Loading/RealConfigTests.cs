using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>The config.json files of real Hub models (tests/fixtures/configs) read into the expected shapes.</summary>
public class RealConfigTests
{
    private static ModelConfig Read(string name) =>
        ConfigReader.Read(Path.Combine(TestPaths.Fixtures, "configs", name, "config.json"));

    private static IReadOnlyList<int> GenerationEos(string name) =>
        GenerationConfig.Read(Path.Combine(TestPaths.Fixtures, "configs", name, "generation_config.json")).EosTokenIds;

    private static (int, int, int, int, int, int, int, int) Shape(ModelConfig c) =>
        (c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKvHeads, c.HeadDim, c.IntermediateSize, c.VocabSize, c.MaxPositionEmbeddings);

    [Fact]
    public void Qwen25()
    {
        var c = Read("qwen2.5-1.5b-instruct");
        Assert.Equal((1536, 28, 12, 2, 128, 8960, 151936), (c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim, c.IntermediateSize, c.VocabSize));
        Assert.True(c.QkvBias && c.TieWordEmbeddings && !c.QkNorm);
        Assert.Equal(1e6, c.RopeTheta);
        var g = GenerationConfig.Read(Path.Combine(TestPaths.Fixtures, "configs", "qwen2.5-1.5b-instruct", "generation_config.json"));
        Assert.Equal([151645, 151643], g.EosTokenIds);
    }

    [Fact]
    public void Qwen3HasExplicitHeadDimAndQkNorm()
    {
        var c = Read("qwen3-0.6b");
        Assert.Equal((1024, 16, 8, 128), (c.HiddenSize, c.NumHeads, c.NumKvHeads, c.HeadDim));
        Assert.True(c.QkNorm && !c.QkvBias);
    }

    [Fact]
    public void Llama32UsesClassicLlama3Scaling()
    {
        var c = Read("llama-3.2-1b-instruct");
        Assert.Equal(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(64, c.HeadDim);
    }

    [Fact]
    public void Llama3ScalingKeepsHighFrequenciesAndDividesLowOnes()
    {
        var plain = RotaryEmbedding.InverseFrequencies(64, 500000, null);
        var scaled = RotaryEmbedding.InverseFrequencies(64, 500000, new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192));
        Assert.Equal(plain[0], scaled[0]);                 // wavelength 2π: far below the high-frequency cut
        Assert.Equal(plain[^1] / 32f, scaled[^1], 1e-12f); // longest wavelength: divided by the factor
        Assert.InRange(scaled[20], plain[20] / 32f, plain[20]);
    }

    [Fact]
    public void Mistral7BInstructV03()
    {
        var c = Read("mistral-7b-instruct-v0.3");
        Assert.Equal("MistralForCausalLM", c.Architecture);
        Assert.Equal((32, 4096, 32, 8, 128, 14336, 32768, 32768), Shape(c));
        Assert.Equal((1e6, 1e-5, DType.BF16), (c.RopeTheta, c.NormEps, c.DType));
        Assert.Null(c.RopeScaling);
        // "sliding_window": null turns MistralConfig's default 4096 off: every layer attends to everything.
        Assert.Equal(0, c.SlidingWindow);
        Assert.All(c.LayerTypes, t => Assert.Equal(ModelConfig.FullAttention, t));
        Assert.False(c.TieWordEmbeddings || c.QkvBias || c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Equal((1.0, 128), (c.PartialRotaryFactor, c.RotaryDim));
        Assert.Null(c.Moe);
        Assert.Null(c.QuantizationMethod);
        Assert.Equal(1, c.BosTokenId);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Equal([2], GenerationEos("mistral-7b-instruct-v0.3"));
    }

    [Fact]
    public void Gemma2_2BIt()
    {
        var c = Read("gemma-2-2b-it");
        Assert.Equal("Gemma2ForCausalLM", c.Architecture);
        Assert.Equal((26, 2304, 8, 4, 256, 9216, 256000, 8192), Shape(c));
        Assert.Equal((1e4, 1e-6, DType.BF16), (c.RopeTheta, c.NormEps, c.DType));
        var g = c.Gemma!;
        Assert.Equal((256.0, 50.0, 30.0), (g.QueryPreAttnScalar, g.AttnLogitSoftcapping, g.FinalLogitSoftcapping));
        // Gemma 2 alternates: even layers slide (window 4096), odd ones attend to everything.
        Assert.Equal(4096, c.SlidingWindow);
        Assert.True(c.IsSlidingLayer(0) && !c.IsSlidingLayer(1) && c.IsSlidingLayer(24) && !c.IsSlidingLayer(25));
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.QkNorm || c.QkvBias || c.OutputBias);
        Assert.Equal([1, 107], c.EosTokenIds);
        Assert.Equal([1, 107], GenerationEos("gemma-2-2b-it"));
    }

    [Fact]
    public void Gemma3_1BIt()
    {
        var c = Read("gemma-3-1b-it");
        Assert.Equal("Gemma3ForCausalLM", c.Architecture);
        Assert.Equal((26, 1152, 4, 1, 256, 6912, 262144, 32768), Shape(c));
        Assert.Equal((1e6, 1e-6, DType.BF16), (c.RopeTheta, c.NormEps, c.DType));
        var g = c.Gemma!;
        Assert.Equal((256.0, 0.0, 0.0, 1e4), (g.QueryPreAttnScalar, g.AttnLogitSoftcapping, g.FinalLogitSoftcapping, g.LocalRopeTheta));
        // sliding_window_pattern 6: five local layers (window 512), then a global one.
        Assert.Equal(512, c.SlidingWindow);
        Assert.Equal(Enumerable.Range(0, 26).Select(l => (l + 1) % 6 != 0), Enumerable.Range(0, 26).Select(c.IsSlidingLayer));
        Assert.True(c.QkNorm && c.TieWordEmbeddings);
        Assert.Equal([1, 106], c.EosTokenIds);
        var defaults = GenerationConfig.Read(Path.Combine(TestPaths.Fixtures, "configs", "gemma-3-1b-it", "generation_config.json"));
        Assert.Equal([1, 106], defaults.EosTokenIds);
        Assert.Equal((64, 0.95), (defaults.TopK, defaults.TopP));
    }

    [Fact]
    public void Phi4MiniInstruct()
    {
        var c = Read("phi-4-mini-instruct");
        Assert.Equal("Phi3ForCausalLM", c.Architecture);
        Assert.Equal((32, 3072, 24, 8, 128, 8192, 200064, 131072), Shape(c));
        Assert.Equal((1e4, 1e-5, DType.BF16), (c.RopeTheta, c.NormEps, c.DType));
        // Partial rotary: 96 of each head's 128 dimensions rotate, under longrope's 48 factor pairs.
        Assert.Equal((0.75, 96), (c.PartialRotaryFactor, c.RotaryDim));
        var r = c.RopeScaling!;
        Assert.Equal(("longrope", 4096, 48, 48), (r.Type, r.OriginalMaxPositionEmbeddings, r.LongFactor!.Count, r.ShortFactor!.Count));
        Assert.Equal((1.0, 47.77), (r.LongFactor[0], r.LongFactor[47]));
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Equal([199999], c.EosTokenIds);
        Assert.Equal([200020, 199999], GenerationEos("phi-4-mini-instruct"));
    }

    [Fact]
    public void Mixtral8x7BInstructV01()
    {
        var c = Read("mixtral-8x7b-instruct-v0.1");
        Assert.Equal("MixtralForCausalLM", c.Architecture);
        Assert.Equal((32, 4096, 32, 8, 128, 14336, 32000, 32768), Shape(c));
        Assert.Equal((1e6, 1e-5, DType.BF16), (c.RopeTheta, c.NormEps, c.DType));
        Assert.Null(c.RopeScaling);
        Assert.Equal(0, c.SlidingWindow);
        Assert.All(c.LayerTypes, t => Assert.Equal(ModelConfig.FullAttention, t));
        Assert.False(c.TieWordEmbeddings || c.QkvBias || c.OutputBias || c.QkNorm);
        var moe = c.Moe!;
        Assert.Equal((8, 2, 14336), (moe.NumExperts, moe.TopK, moe.IntermediateSize));
        Assert.Equal((MoeScoring.SoftmaxTopK, true, MoeActivation.SiluGated), (moe.Scoring, moe.NormTopkProb, moe.Activation));
        Assert.False(moe.RouterBias || moe.StackedExperts || moe.AttentionSinks);
        Assert.Empty(moe.DenseLayers);
        Assert.Null(c.QuantizationMethod);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Equal([2], GenerationEos("mixtral-8x7b-instruct-v0.1"));
    }

    [Fact]
    public void Qwen3_30B_A3B()
    {
        var c = Read("qwen3-30b-a3b");
        Assert.Equal("Qwen3MoeForCausalLM", c.Architecture);
        // intermediate_size is the dense MLP's width, used by no layer here (mlp_only_layers is empty, decoder_sparse_step 1).
        Assert.Equal((48, 2048, 32, 4, 128, 6144, 151936, 40960), Shape(c));
        Assert.Equal((1e6, 1e-6, DType.BF16), (c.RopeTheta, c.NormEps, c.DType));
        Assert.Null(c.RopeScaling);
        Assert.Equal(0, c.SlidingWindow);   // use_sliding_window false
        Assert.All(c.LayerTypes, t => Assert.Equal(ModelConfig.FullAttention, t));
        Assert.True(c.QkNorm);
        Assert.False(c.TieWordEmbeddings || c.QkvBias || c.OutputBias);
        var moe = c.Moe!;
        Assert.Equal((128, 8, 768), (moe.NumExperts, moe.TopK, moe.IntermediateSize));
        Assert.Equal((MoeScoring.SoftmaxTopK, true, MoeActivation.SiluGated), (moe.Scoring, moe.NormTopkProb, moe.Activation));
        Assert.False(moe.RouterBias || moe.StackedExperts || moe.AttentionSinks);
        Assert.Empty(moe.DenseLayers);
        Assert.Null(c.QuantizationMethod);
        Assert.Equal(151643, c.BosTokenId);
        Assert.Equal([151645], c.EosTokenIds);
    }

    [Fact]
    public void GptOss20B()
    {
        var c = Read("gpt-oss-20b");
        Assert.Equal("GptOssForCausalLM", c.Architecture);
        Assert.Equal((24, 2880, 64, 8, 64, 2880, 201088, 131072), Shape(c));
        Assert.Equal((150000.0, 1e-5), (c.RopeTheta, c.NormEps));
        Assert.Null(c.DType);   // no torch_dtype: the checkpoint is MXFP4
        Assert.Equal("mxfp4", c.QuantizationMethod);
        Assert.Equal(new RopeScaling("yarn", 32.0, OriginalMaxPositionEmbeddings: 4096) { BetaFast = 32, BetaSlow = 1, Truncate = false }, c.RopeScaling);
        Assert.Equal(0.1 * Math.Log(32) + 1, RotaryEmbedding.Create(c, c.MaxPositionEmbeddings).AttentionFactor, 1e-6);
        Assert.Equal(128, c.SlidingWindow);
        Assert.Equal(Enumerable.Range(0, 24).Select(l => l % 2 == 0 ? ModelConfig.SlidingAttention : ModelConfig.FullAttention), c.LayerTypes);
        Assert.True(c.QkvBias && c.OutputBias);
        Assert.False(c.TieWordEmbeddings || c.QkNorm);
        var moe = c.Moe!;
        Assert.Equal((32, 4, 2880, 7f), (moe.NumExperts, moe.TopK, moe.IntermediateSize, moe.SwigluLimit));
        Assert.Equal((MoeScoring.TopKSoftmax, false, MoeActivation.ClampedSwiglu), (moe.Scoring, moe.NormTopkProb, moe.Activation));
        Assert.True(moe.RouterBias && moe.StackedExperts && moe.AttentionSinks);
        Assert.Empty(moe.DenseLayers);
        Assert.Equal([200002], c.EosTokenIds);
        Assert.Equal([200002, 199999], GenerationEos("gpt-oss-20b"));
    }

    // gpt-oss's checkpoints are MXFP4, which loads (Mxfp4Tests); any other quantized format is named before the engine
    // looks for weights or a tokenizer.
    [Theory]
    [InlineData("fp8", "FP8")]
    [InlineData("awq", "AWQ")]
    public void OtherQuantizedCheckpointsAreRefused(string method, string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), "pagoda-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            foreach (string f in Directory.GetFiles(Path.Combine(TestPaths.Fixtures, "configs", "gpt-oss-20b"), "*.json"))
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            string config = Path.Combine(dir, "config.json");
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!.AsObject();
            json["quantization_config"]!["quant_method"] = method;
            File.WriteAllText(config, json.ToJsonString());
            var e = Assert.Throws<ModelLoadException>(() => new LLM(dir));
            Assert.StartsWith(config + $": {name}-quantized checkpoints are not supported", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
