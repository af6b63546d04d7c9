using System.Text.Json.Nodes;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>config.json in both Hub styles, sharded and re-typed weights, and clear errors for bad folders.</summary>
public class ModelFolderTests
{
    [Fact]
    public void ReadsClassicStyleConfig()
    {
        var c = ModelFolder.Open(TestPaths.Model("fortune-chat")).Config;
        Assert.Equal("Qwen2ForCausalLM", c.Architecture);
        Assert.Equal((256, 8, 4, 2, 64), (c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim));
        Assert.True(c.QkvBias && c.TieWordEmbeddings && !c.OutputBias);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal(Pagoda.Backends.DType.BF16, c.DType);
    }

    [Fact]
    public void ReadsRopeParametersStyleConfig()
    {
        var c = ModelFolder.Open(TestPaths.Model("tiny-llama")).Config;
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 1024), c.RopeScaling);
        Assert.Equal(Pagoda.Backends.DType.BF16, c.DType);
        Assert.False(c.TieWordEmbeddings);
    }

    [Fact]
    public void BothStylesGiveTheSameConfig()
    {
        using var m = new TempModel("tiny-llama");
        m.EditConfig(o =>
        {
            var rp = o["rope_parameters"]!.AsObject();
            o["rope_theta"] = rp["rope_theta"]!.GetValue<double>();
            rp.Remove("rope_theta");
            o.Remove("rope_parameters");
            o["rope_scaling"] = rp.DeepClone();
            o["torch_dtype"] = o["dtype"]!.GetValue<string>();
            o.Remove("dtype");
        });
        Assert.Equal(ModelFolder.Open(TestPaths.Model("tiny-llama")).Config with { EosTokenIds = [] },
            ModelFolder.Open(m.Dir).Config with { EosTokenIds = [] });
    }

    [Fact]
    public void ReadsGenerationConfig()
    {
        var g = ModelFolder.Open(TestPaths.Model("fortune-chat")).GenerationConfig;
        Assert.Equal([8194, 8192], g.EosTokenIds);
        Assert.Equal((0.7, 0.8, 20, 1.05), (g.Temperature, g.TopP, g.TopK, g.RepetitionPenalty));
    }

    [Theory]
    [InlineData("MambaForCausalLM")]
    [InlineData("DeepseekV3ForCausalLM")]
    [InlineData("Qwen3NextForCausalLM")]
    public void UnsupportedArchitectureIsNamedWithTheSupportedOnes(string arch)
    {
        using var m = new TempModel("tiny-llama");
        m.EditConfig(o => o["architectures"] = new JsonArray(arch));
        var e = Assert.Throws<ModelLoadException>(() => new LLM(m.Dir));
        Assert.Equal($"{m.File("config.json")}: unsupported architecture '{arch}' (supported: {string.Join(", ", ConfigReader.SupportedArchitectures)})", e.Message);
        Assert.Equal(["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "OPTForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM",
            "Gemma2ForCausalLM", "Gemma3ForCausalLM", "Qwen3MoeForCausalLM", "MixtralForCausalLM", "GptOssForCausalLM"], ConfigReader.SupportedArchitectures);
    }

    // MXFP4 loads for gpt-oss only (Mxfp4Tests), from its packed tensors; dummy weights are made unquantized.
    [Fact]
    public void QuantizedCheckpointIsRefusedUnlessReadableOrDummy()
    {
        using var m = new TempModel("tiny-gpt-oss");
        m.EditConfig(o => o["quantization_config"] = JsonNode.Parse("""{"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]}"""));
        var e = Assert.Throws<ModelLoadException>(() => new LLM(new EngineArgs { Model = m.Dir, Warn = _ => { } }));
        Assert.Equal(m.Dir + ": config.json declares MXFP4 quantization but no tensor has _blocks and _scales", e.Message);

        var warnings = new List<string>();
        using (var llm = new LLM(new EngineArgs { Model = m.Dir, LoadFormat = "dummy", Warn = warnings.Add }))
        {
            Assert.Contains(warnings, w => w.Contains("declares mxfp4 quantization; the dummy weights are unquantized"));
            Assert.Equal(4, llm.Generate([PromptInput.FromTokenIds([1, 2, 3])], new SamplingParams { Temperature = 0, MaxTokens = 4, IgnoreEos = true })[0]
                .Outputs[0].TokenIds.Count);
        }

        using var llama = new TempModel("tiny-llama");
        llama.EditConfig(o => o["quantization_config"] = JsonNode.Parse("""{"quant_method": "mxfp4"}"""));
        e = Assert.Throws<ModelLoadException>(() => new LLM(llama.Dir));
        Assert.Equal(llama.File("config.json") + ": MXFP4-quantized checkpoints are not supported (quantization_config.quant_method 'mxfp4'); " +
            "use an unquantized (bfloat16) copy of the model, or --load-format dummy for random unquantized weights of its shapes", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void QuantizationConfigWithoutAMethodIsNamed()
    {
        using var m = new TempModel("tiny-llama");
        m.EditConfig(o => o["quantization_config"] = new JsonObject { ["bits"] = 4 });
        var e = Assert.Throws<ModelLoadException>(() => ModelFolder.Open(m.Dir));
        Assert.Contains("'quantization_config' has no 'quant_method'", e.Message);
    }

    [Theory]
    [InlineData("hidden_size", "\"big\"", "'hidden_size' must be a positive integer")]
    [InlineData("dtype", "\"int4\"", "unsupported dtype 'int4'")]
    [InlineData("rope_parameters", "{\"rope_type\": \"dynamic\", \"factor\": 4.0}", "unsupported rope type 'dynamic'")]
    public void BadConfigFieldsAreNamed(string key, string json, string expected)
    {
        using var m = new TempModel("tiny-llama");
        m.EditConfig(o => o[key] = JsonNode.Parse(json));
        var e = Assert.Throws<ModelLoadException>(() => ModelFolder.Open(m.Dir));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ConfigThatIsNotJson()
    {
        using var m = new TempModel("tiny-qwen3");
        File.WriteAllText(m.File("config.json"), "{ not json");
        var e = Assert.Throws<ModelLoadException>(() => ModelFolder.Open(m.Dir));
        Assert.Contains("config.json: not valid JSON", e.Message);
    }

    [Fact]
    public void MissingFolder()
    {
        var e = Assert.Throws<ModelLoadException>(() => ModelFolder.Open("/nonexistent/model"));
        Assert.Contains("model folder not found", e.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var m = new TempModel("tiny-qwen3");
        var entries = SafeTensorsWriter.ReadAll(m.File("model.safetensors")).Where(e => e.Name != "model.layers.1.mlp.up_proj.weight");
        SafeTensorsWriter.Write(m.File("model.safetensors"), entries);
        var e = Assert.Throws<ModelLoadException>(() => new LLM(m.Dir));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("missing tensor 'model.layers.1.mlp.up_proj.weight'", e.Message);
    }

    [Fact]
    public void ShapeMismatchAgainstConfigIsNamed()
    {
        using var m = new TempModel("tiny-qwen3");
        m.EditConfig(o => o["intermediate_size"] = 256);
        var e = Assert.Throws<ModelLoadException>(() => new LLM(m.Dir));
        Assert.Contains("has shape [384, 128], config.json implies [256, 128]", e.Message);
    }

    [Fact]
    public void NoWeights()
    {
        using var m = new TempModel("tiny-qwen3");
        File.Delete(m.File("model.safetensors"));
        var e = Assert.Throws<ModelLoadException>(() => new LLM(m.Dir));
        Assert.Contains("no weights: expected model.safetensors", e.Message);
    }
}
