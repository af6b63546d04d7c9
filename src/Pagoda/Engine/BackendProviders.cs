using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Engine;

/// <summary>
/// A device backend that lives outside the core library (the CUDA one in Pagoda.Cuda): how to detect
/// it, build it for a model, size its KV pool, and wrap the model (e.g. with CUDA graphs). The engine
/// gets the ones it may use through <see cref="EngineArgs.BackendProviders"/>.
/// </summary>
public interface IBackendProvider
{
    /// <summary>The --device name it answers to (cuda).</summary>
    string Device { get; }

    /// <summary>Whether the device can be used here; otherwise why not.</summary>
    bool IsAvailable(out string reason);

    /// <summary>
    /// Creates the backend for a model of <paramref name="config"/> on device <paramref name="deviceIndex"/> of this host
    /// (a data-parallel replica's, or a tensor-parallel rank's on its node).
    /// </summary>
    IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex);

    /// <summary>KV blocks to allocate once the weights are loaded (e.g. from --gpu-memory-utilization).</summary>
    int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen);

    /// <summary>Wraps the model for execution (CUDA graphs for decode); may return it unchanged.</summary>
    IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape);

    /// <summary>
    /// Tensor parallelism on this device: rank 0's name for a new group's collectives (NCCL's unique id), which the job
    /// carries to every rank; throws, saying why, where this device has none.
    /// </summary>
    string NewCollectivesId() => throw NoCollectives();

    /// <summary>
    /// This rank's collectives on <paramref name="backend"/> within <paramref name="group"/>, joined through rank 0's
    /// <paramref name="collectivesId"/>; every rank of the group makes its own.
    /// </summary>
    Distributed.ICommunicator CreateCommunicator(IBackend backend, Distributed.ITensorParallelGroup group, string collectivesId) =>
        throw NoCollectives();

    private ArgumentException NoCollectives() => new($"--tensor-parallel-size above 1 is not supported on --device {Device}.");

    /// <summary>Whether `--device auto` may pick it (stand-in devices of tests and benchmarks say no).</summary>
    bool AutoSelect => true;
}

/// <summary>
/// What a provider prepares a model's execution for: the largest decode batch, the longest context, whether graphs are
/// off (--enforce-eager), and the query of a verification step (1 + num_speculative_tokens; 0 without speculation).
/// </summary>
public sealed record ExecutionShape(int MaxNumSeqs, int MaxModelLen, bool EnforceEager, int VerifyQuery)
{
    /// <summary>The shape an engine's <paramref name="args"/> ask for.</summary>
    public static ExecutionShape Of(EngineArgs args, int maxModelLen) =>
        new(args.MaxNumSeqs, maxModelLen, args.EnforceEager, args.SpeculativeConfig is { } spec ? 1 + spec.NumSpeculativeTokens : 0);
}

/// <summary>Picks the provider for `--device` among those an engine was given; the CPU backend is built in.</summary>
public static class BackendProviders
{
    /// <summary>
    /// The provider for <paramref name="device"/>: null means the CPU backend. `auto` picks an available
    /// accelerator, else the CPU; naming one that is missing or unavailable is an error.
    /// </summary>
    public static IBackendProvider? Resolve(string device, IReadOnlyList<IBackendProvider> providers)
    {
        if (device == "cpu")
            return null;
        if (device == "auto")
            return providers.FirstOrDefault(p => p.AutoSelect && p.IsAvailable(out _));
        var provider = providers.FirstOrDefault(p => p.Device == device) ?? throw new ArgumentException(
            $"--device {device} is not available in this build (the {device} backend is not registered; " +
            (device == "cuda" ? "reference Pagoda.Cuda and pass Pagoda.Cuda.CudaProvider.Instance in EngineArgs.BackendProviders)." : "supported: cpu)."));
        if (!provider.IsAvailable(out string why))
            throw new ArgumentException($"--device {device}: no usable GPU here ({why}). Use --device cpu.");
        return provider;
    }
}
