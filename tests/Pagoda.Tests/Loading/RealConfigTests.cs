using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>The config.json files of real Hub models (tests/fixtures/configs) read into the expected shapes.</summary>
public class RealConfigTests
{
    private static ModelConfig Read(string name) =>
        ConfigReader.Read(Path.Combine(TestPaths.Fixtures, "configs", name, "config.json"));

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
}
