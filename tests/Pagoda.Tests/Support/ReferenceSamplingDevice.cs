using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Engine;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Sampling;

namespace Pagoda.Tests.Support;

/// <summary>
/// The CPU backend presented as a device that samples (<see cref="IDeviceSampler"/>), its reduction done by
/// <see cref="DeviceSamplingReference"/>: the engine then plans, stages and picks exactly as it does over the GPU,
/// so the device path's host half runs in CI. Pass <see cref="Device"/> in EngineArgs.Device and this in BackendProviders.
/// </summary>
public sealed class ReferenceSamplingDevice : IBackendProvider
{
    public string Device => "reference-sampling-cpu";

    public bool AutoSelect => false;

    /// <summary>Steps reduced, and of those the ones that were processed (edits, penalties, masks, draws, logprobs).</summary>
    public int Reduced, Processed;

    public bool IsAvailable(out string reason)
    {
        reason = "";
        return true;
    }

    public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen) => new Backend(new CpuBackend(args.ResolvedBackendOptions()), this);

    public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen) => args.NumKvBlocks ?? 64;

    public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, EngineArgs args, int maxModelLen) => model;

    private sealed class Backend(CpuBackend cpu, ReferenceSamplingDevice owner) : IBackend, IDeviceSampler
    {
        public string Name => "reference-sampling";
        public int MaxCandidates => 64;

        public void ReduceToHost(Tensor logits, DeviceSamplingInputs inputs, Span<float> dst)
        {
            var host = new float[logits.NumElements];
            cpu.CopyToHost(logits, host);
            DeviceSamplingReference.Reduce(host, (int)(logits.NumElements / inputs.Rows), inputs, dst);
            Interlocked.Increment(ref owner.Reduced);
            if (inputs.Processed)
                Interlocked.Increment(ref owner.Processed);
        }

        public Tensor LoadWeight(HostWeight weight) => cpu.LoadWeight(weight);
        public Tensor Empty(params int[] shape) => cpu.Empty(shape);
        public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth) => cpu.AllocateKvCache(numLayers, numBlocks, blockSize, kvWidth);
        public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst) => cpu.Embedding(table, ids, dst);
        public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst) => cpu.Linear(x, weight, bias, dst);
        public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst) => cpu.RmsNorm(x, weight, eps, dst);
        public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst) => cpu.LayerNorm(x, weight, bias, eps, dst);
        public void Add(Tensor a, Tensor b, Tensor dst) => cpu.Add(a, b, dst);
        public void SiluMul(Tensor gate, Tensor up, Tensor dst) => cpu.SiluMul(gate, up, dst);
        public void Relu(Tensor x) => cpu.Relu(x);
        public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq) => cpu.Rope(x, headDim, positions, invFreq);
        public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping) => cpu.StoreKv(k, v, cache, layer, slotMapping);
        public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, int numHeads, int numKvHeads, int headDim, float scale, Tensor dst) =>
            cpu.PagedAttention(q, cache, layer, batch, numHeads, numKvHeads, headDim, scale, dst);
        public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst) => cpu.GatherRows(x, rows, dst);
        public void CopyToHost(Tensor src, Span<float> dst) => cpu.CopyToHost(src, dst);
        public void Dispose() => cpu.Dispose();
    }
}
