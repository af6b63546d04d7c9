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

    /// <summary>Creates the backend for a model of <paramref name="config"/>.</summary>
    IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen);

    /// <summary>KV blocks to allocate once the weights are loaded (e.g. from --gpu-memory-utilization).</summary>
    int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen);

    /// <summary>Wraps the model for execution (CUDA graphs for decode); may return it unchanged.</summary>
    IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, EngineArgs args, int maxModelLen);

    /// <summary>Whether `--device auto` may pick it (stand-in devices of tests and benchmarks say no).</summary>
    bool AutoSelect => true;
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
