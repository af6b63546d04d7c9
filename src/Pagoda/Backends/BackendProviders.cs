using Pagoda.Models;

namespace Pagoda.Backends;

/// <summary>
/// A device backend that lives outside the core library (the CUDA one in Pagoda.Cuda): how to detect
/// it, build it for a model, size its KV pool, and wrap the model (e.g. with CUDA graphs).
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

/// <summary>Registered device backends; the CPU backend is built in.</summary>
public static class BackendProviders
{
    private static readonly Dictionary<string, IBackendProvider> Providers = new();

    /// <summary>Makes a backend available to --device (idempotent).</summary>
    public static void Register(IBackendProvider provider)
    {
        lock (Providers)
            Providers[provider.Device] = provider;
    }

    /// <summary>Whether a provider answers to <paramref name="device"/> (stand-in devices of tests and benchmarks).</summary>
    public static bool IsRegistered(string device)
    {
        lock (Providers)
            return Providers.ContainsKey(device);
    }

    /// <summary>
    /// The provider for <paramref name="device"/>: null means the CPU backend. `auto` picks a registered
    /// accelerator that is available, else the CPU; naming an unavailable device is an error.
    /// </summary>
    public static IBackendProvider? Resolve(string device)
    {
        lock (Providers)
        {
            if (device == "cpu")
                return null;
            if (device == "auto")
                return Providers.Values.FirstOrDefault(p => p.AutoSelect && p.IsAvailable(out _));
            if (!Providers.TryGetValue(device, out var provider))
                throw new ArgumentException(
                    $"--device {device} is not available in this build (the {device} backend is not registered; " +
                    (device == "cuda" ? "reference Pagoda.Cuda and call Pagoda.Cuda.CudaProvider.Register())." : "supported: cpu)."));
            if (!provider.IsAvailable(out string why))
                throw new ArgumentException($"--device {device}: no usable GPU here ({why}). Use --device cpu.");
            return provider;
        }
    }
}
