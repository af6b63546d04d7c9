using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Engine;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Tests.Support;

/// <summary>
/// The CPU backend behind a forward that reports itself asynchronous, as CUDA graph replays do: ForwardAsync
/// only records the launch and the forward itself runs inside Wait, so whatever the engine does before
/// waiting happens strictly before the "device" reads or writes the KV pool. With asynchronous off it is
/// the default synchronous seam. Each instance has its own device name (pass it in EngineArgs.BackendProviders) and log.
/// </summary>
public sealed class DeferredDevice : IBackendProvider
{
    private static int _next;

    public DeferredDevice(bool asynchronous = true)
    {
        Asynchronous = asynchronous;
        Device = $"deferred-cpu-{Interlocked.Increment(ref _next)}";
    }

    public bool Asynchronous { get; }

    /// <summary>What happened, in order: "launch N" (N sequences), "wait", and whatever tests add.</summary>
    public List<string> Log { get; } = [];

    public string Device { get; }

    public bool AutoSelect => false;

    public bool IsAvailable(out string reason)
    {
        reason = "";
        return true;
    }

    public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex) => new CpuBackend(args.ResolvedBackendOptions());

    public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen) =>
        args.NumKvBlocks ?? 64;

    public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape) =>
        new Model(model, this);

    private sealed class Model(IModel inner, DeferredDevice device) : IModel
    {
        public ModelConfig Config => inner.Config;

        public int KvWidth => inner.KvWidth;

        public long WeightBytes => inner.WeightBytes;

        public float[] Forward(ForwardBatch batch, PagedKvCache cache) => inner.Forward(batch, cache);

        public IForwardHandle ForwardAsync(ForwardBatch batch, PagedKvCache cache)
        {
            lock (device.Log)
                device.Log.Add($"launch {batch.NumSeqs}");
            if (!device.Asynchronous)
                return new CompletedForward(inner.Forward(batch, cache));
            return new Handle(() =>
            {
                lock (device.Log)
                    device.Log.Add("wait");
                return inner.Forward(batch, cache);
            });
        }

        public void Dispose() => inner.Dispose();
    }

    private sealed class Handle(Func<float[]> run) : IForwardHandle
    {
        private bool _waited;

        public bool IsAsynchronous => true;

        public float[] Wait()
        {
            Assert.False(_waited, "a forward handle was waited for twice");
            _waited = true;
            return run();
        }
    }
}
