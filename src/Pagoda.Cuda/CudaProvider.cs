using Pagoda.Backends;
using Pagoda.Engine;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Cuda;

/// <summary>Registers `--device cuda` with the engine: backend creation, KV sizing and CUDA graphs.</summary>
public sealed class CudaProvider : IBackendProvider
{
    private CudaProvider()
    {
    }

    /// <summary>The provider to list in <see cref="EngineArgs.BackendProviders"/> for --device cuda (and auto-detection).</summary>
    public static CudaProvider Instance { get; } = new();

    /// <inheritdoc />
    public string Device => "cuda";

    /// <inheritdoc />
    public bool IsAvailable(out string reason) => CudaDevice.IsAvailable(out reason);

    /// <summary>The compute dtype for --dtype and the model's config.</summary>
    public static DType ResolveDType(string dtype, ModelConfig config) => dtype switch
    {
        "float32" or "float" => DType.F32,
        "bfloat16" => DType.BF16,
        "float16" or "half" => DType.F16,
        _ => config.DType ?? DType.BF16,
    };

    /// <inheritdoc />
    public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex)
    {
        // Held until Prepare: the KV cache's size is measured against what this engine alone took.
        var startup = CudaStartupLock.Acquire(CudaStartupLock.PathFor(deviceIndex), TimeSpan.FromMinutes(15));
        try
        {
            return new CudaBackend(ResolveDType(args.DType, config), maxModelLen: maxModelLen, options: args.ResolvedBackendOptions(),
                deviceOrdinal: deviceIndex) { StartupLock = startup };
        }
        catch
        {
            startup.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen)
    {
        var b = (CudaBackend)backend;
        var (free, total) = b.Device.MemoryInfo();
        int elem = DTypes.SizeOf(b.DType);
        // Activations of the largest step: the residual stream, norms, q/k/v, attention, the MLP, and the logits.
        long tokens = args.MaxNumBatchedTokens;
        long perToken = 4L * config.HiddenSize + 3L * config.NumHeads * config.HeadDim + 3L * config.IntermediateSize;
        long logitRows = Math.Max(tokens, args.MaxNumSeqs);
        long reserve = tokens * perToken * elem + logitRows * config.VocabSize * (elem + 4L) + (1L << 30);
        // As vLLM: the engine's share is a fraction of the whole device, within what was free when it began (so two
        // engines may share a GPU); what it has taken since (weights, workspaces) comes out of it.
        long share = (long)(total * args.GpuMemoryUtilization);
        if (share > b.FreeAtStart)
            throw new ArgumentException($"--gpu-memory-utilization {args.GpuMemoryUtilization} asks for {share / 1e9:F1} GB of the GPU's " +
                $"{total / 1e9:F1} GB, but only {b.FreeAtStart / 1e9:F1} GB were free when the engine began (another process holds the rest); lower it.");
        long budget = share - (b.FreeAtStart - free) - reserve;
        long perBlock = b.KvBlockBytes(config.NumLayers, args.BlockSize, kvWidth);
        return (int)Math.Clamp(budget / perBlock, 0, int.MaxValue / args.BlockSize - 1);
    }

    /// <inheritdoc />
    public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape)
    {
        var b = (CudaBackend)backend;
        var prepared = new CudaGraphModel(model, b, cache, shape.MaxNumSeqs, shape.MaxModelLen, shape.EnforceEager, shape.VerifyQuery);
        b.StartupLock?.Dispose();   // the KV cache is made (a draft's Prepare comes first: the target's graphs then follow unlocked)
        return prepared;
    }
}
