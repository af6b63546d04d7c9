using System.Runtime.InteropServices;
using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>
/// pytorch_model.bin files written by torch.save (PyTorch 2.11, zip and legacy formats) load to exactly
/// the tensors of the safetensors fixtures and generate identically.
/// </summary>
public class TorchCheckpointTests
{
    private static string Torch(string name) => Path.Combine(TestPaths.Fixtures, "torch", name);

    private static unsafe byte[] Bytes(ITensorFile file, TensorInfo info) =>
        new ReadOnlySpan<byte>(file.GetPointer(info), (int)info.Length).ToArray();

    /// <summary>A copy of the fixture model whose weights are the given .bin files instead of safetensors.</summary>
    private static TempModel WithBin(string model, params (string Source, string Name)[] files)
    {
        var m = new TempModel(model);
        File.Delete(m.File("model.safetensors"));
        foreach (var (source, name) in files)
            File.Copy(Torch(source), m.File(name));
        return m;
    }

    private static TempModel Sharded() => WithBin("tiny-qwen3",
        ("tiny-qwen3.pytorch_model-00001-of-00002.bin", "pytorch_model-00001-of-00002.bin"),
        ("tiny-qwen3.pytorch_model-00002-of-00002.bin", "pytorch_model-00002-of-00002.bin"),
        ("tiny-qwen3.pytorch_model.bin.index.json", "pytorch_model.bin.index.json"));

    private static void AssertSameTensors(string safetensorsFolder, string binFolder)
    {
        using var expected = WeightStore.Open(safetensorsFolder);
        using var actual = WeightStore.Open(binFolder);
        foreach (string name in expected.Names)
        {
            var e = expected.Find(name);
            var a = actual.Get(name, e.Info.Shape);
            Assert.Equal(e.Info.DType, a.Info.DType);
            Assert.True(Bytes(e.File, e.Info).AsSpan().SequenceEqual(Bytes(a.File, a.Info)), name);
        }
    }

    [Theory]
    [InlineData("tiny-opt", "tiny-opt.pytorch_model.bin")]
    [InlineData("tiny-opt", "tiny-opt.legacy.pytorch_model.bin")]
    [InlineData("tiny-llama", "tiny-llama.pytorch_model.bin")]
    public void SingleFileLoadsTheSameTensorsAndGeneration(string model, string bin)
    {
        using var m = WithBin(model, (bin, "pytorch_model.bin"));
        AssertSameTensors(TestPaths.Model(model), m.Dir);
        AssertSameGeneration(TestPaths.Model(model), m.Dir);
    }

    [Fact]
    public void ShardedLoadsTheSameTensorsAndGeneration()
    {
        using var m = Sharded();
        AssertSameTensors(TestPaths.Model("tiny-qwen3"), m.Dir);
        AssertSameGeneration(TestPaths.Model("tiny-qwen3"), m.Dir);
    }

    [Fact]
    public void SafetensorsWinWhenBothArePresent()
    {
        using var m = new TempModel("tiny-opt");
        File.WriteAllText(m.File("pytorch_model.bin"), "not read");
        using var store = WeightStore.Open(m.Dir);
        Assert.IsType<SafeTensorsFile>(store.Find("model.decoder.embed_tokens.weight").File);
    }

    private static void AssertSameGeneration(string expectedDir, string actualDir)
    {
        var greedy = new SamplingParams { Temperature = 0, MaxTokens = 6, Logprobs = 2, IgnoreEos = true };
        CompletionOutput Run(string dir)
        {
            using var llm = new LLM(dir);
            return llm.Generate([PromptInput.FromTokenIds([5, 17, 300, 40])], greedy)[0].Outputs[0];
        }
        var expected = Run(expectedDir);
        var actual = Run(actualDir);
        Assert.Equal(expected.TokenIds, actual.TokenIds);
        Assert.Equal(expected.Logprobs!.Select(l => l.Logprob), actual.Logprobs!.Select(l => l.Logprob));
    }

    [Fact]
    public void ViewsWithOffsetsAndStridesAreMaterialized()
    {
        using var f = TorchCheckpoint.Open(Torch("views.bin"));
        float[] Values(string name)
        {
            var info = f.Tensors[name];
            Assert.Equal(DType.F32, info.DType);
            return MemoryMarshal.Cast<byte, float>(Bytes(f, info)).ToArray();
        }
        Assert.Equal([4, 6], f.Tensors["full"].Shape);
        Assert.Equal(Enumerable.Range(0, 24).Select(i => (float)i), Values("full"));
        Assert.Equal([2, 3], f.Tensors["view"].Shape);
        Assert.Equal([8f, 9, 10, 14, 15, 16], Values("view"));
        Assert.Equal([6, 4], f.Tensors["t"].Shape);
        Assert.Equal(Enumerable.Range(0, 24).Select(k => (float)(k % 4 * 6 + k / 4)), Values("t"));
    }

    [Fact]
    public void TruncatedCheckpointIsReported()
    {
        string path = Path.GetTempFileName();
        try
        {
            var bytes = File.ReadAllBytes(Torch("tiny-opt.legacy.pytorch_model.bin"));
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            var e = Assert.Throws<ModelLoadException>(() => TorchCheckpoint.Open(path));
            Assert.StartsWith(path + ": ", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
