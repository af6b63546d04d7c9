using Pagoda.Backends;
using Pagoda.Cuda;
using Pagoda.CudaCheck;

namespace Pagoda.Tests.Cuda;

/// <summary>A fact that runs only where the CUDA driver reports a GPU; elsewhere (CI) it is skipped with the reason.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!CudaDevice.IsAvailable(out string why))
            Skip = $"no CUDA GPU: {why}";
    }
}

/// <summary>
/// The GPU checks of tools/Pagoda.CudaCheck (the same code the self-contained build runs on a GPU box):
/// every op against the CPU backend, and the golden runs on the GPU.
/// </summary>
public class CudaTests
{
    [CudaFact]
    public void EveryOpMatchesTheCpuBackendInFloat32() => Assert.Empty(RunParity(DType.F32));

    [CudaFact]
    public void EveryOpMatchesTheCpuBackendInBfloat16() => Assert.Empty(RunParity(DType.BF16));

    [CudaFact]
    public void FixedOrderGemmIsRowInvariantBitForBit()
    {
        using var device = new CudaDevice();
        Assert.Empty(GemmParity.Run(DType.BF16, device, TextWriter.Null));
        Assert.Empty(GemmParity.Run(DType.F16, device, TextWriter.Null));
    }

    [CudaFact]
    public void Float32GoldenRunsMatchTransformers()
    {
        foreach (var (entry, dir) in new[] { ("fortune-chat", "models/fortune-chat"), ("tiny-llama", "tests/fixtures/models/tiny-llama"),
                     ("tiny-qwen3", "tests/fixtures/models/tiny-qwen3"), ("tiny-opt", "tests/fixtures/models/tiny-opt") })
            Assert.Empty(GoldenCheck.Run(Support.TestPaths.RepoRoot, entry, dir, "float32", TextWriter.Null));
    }

    [CudaFact]
    public void Bfloat16FortuneChatAgreesByVllmsRule() =>
        Assert.Empty(GoldenCheck.Run(Support.TestPaths.RepoRoot, "fortune-chat-bf16", "models/fortune-chat", "bfloat16", TextWriter.Null));

    [Fact]
    public void DeviceCudaWithoutAGpuFailsClearly()
    {
        if (CudaDevice.IsAvailable(out _))
            return; // the GPU path is covered above
        var e = Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs { Device = "cuda", BackendProviders = [CudaProvider.Instance] }));
        Assert.Contains("--device cuda: no usable GPU here", e.Message);
    }

    [Fact]
    public void AutoFallsBackToTheCpuWithoutAGpu()
    {
        if (CudaDevice.IsAvailable(out _))
            return;
        using var llm = new LLM(new EngineArgs { Device = "auto", BackendProviders = [CudaProvider.Instance] });
        Assert.Equal("cpu", llm.Engine.Backend.Name);
    }

    [Fact]
    public void DecodeGraphSizesFollowVllm()
    {
        Assert.Equal([1, 2, 4, 8, 16, 24, 32], CudaGraphModel.CaptureSizes(32));
        Assert.Equal([1, 2, 4, 8], CudaGraphModel.CaptureSizes(5));
        Assert.Equal([1], CudaGraphModel.CaptureSizes(1));
    }

    [Theory]
    [InlineData(4096, 300, 0, false, 64)]       // prefill or mixed batch, a short context: 64
    [InlineData(32768, 300, 1, false, 64)]      // a long max-model-len does not lengthen a short context's splits
    [InlineData(32768, 8000, 1, false, 128)]    // 64 per 4,096 keys of the tile's own context
    [InlineData(4096, 300, 7, false, 64)]       // a small decode batch
    [InlineData(4096, 300, 8, false, 256)]      // a large decode batch: longer splits
    [InlineData(32768, 20000, 256, false, 320)] // its own length already past the large-batch one stays
    [InlineData(4096, 300, 256, true, 64)]      // batch-invariant mode: fixed by max-model-len alone
    [InlineData(32768, 300, 1, true, 512)]
    public void AttentionSplitLengthFollowsTheContextUnlessBatchInvariant(int maxModelLen, int keys, int decodeSeqs, bool invariant, int expected) =>
        Assert.Equal(expected, CudaBackend.SplitLength(maxModelLen, keys, decodeSeqs, invariant));

    [Fact]
    public void NoTileTakesMoreSplitsThanThePartialBuffersHold()
    {
        foreach (int seqs in new[] { 0, 1, 8, 256 })
            for (int keys = 1; keys <= 131072; keys += 97)
            {
                int len = CudaBackend.SplitLength(131072, keys, seqs, batchInvariant: false);
                Assert.True((keys + len - 1) / len <= CudaBackend.MaxAttentionSplits, $"{keys} keys, {seqs} sequences");
            }
    }

    private static List<string> RunParity(DType dtype)
    {
        using var device = new CudaDevice();
        return Parity.Run(dtype, device, TextWriter.Null);
    }
}
