using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Engine;
using Pagoda.Loading;
using Pagoda.Models;

namespace Pagoda.Bench.HostOverhead;

/// <summary>
/// A stand-in device for measuring the engine's host work: the model's forward costs nothing and returns,
/// for every logits row, the top-k candidates a GPU's device-side reduction would (the next token of a
/// fixed script at that position), so everything the engine does around a forward runs for real.
/// </summary>
internal sealed class ScriptedProvider(int[] script, bool asynchronous, DeviceCost? cost = null) : IBackendProvider
{
    public string Device => "scripted";

    public bool AutoSelect => false;

    public bool IsAvailable(out string reason)
    {
        reason = "";
        return true;
    }

    public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex) => new TopKBackend();

    // A pool this size holds every request's blocks without preemption; its tensors stay one slot small.
    public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen) =>
        args.MaxNumSeqs * ((maxModelLen + args.BlockSize - 1) / args.BlockSize + 1);

    /// <summary>The model the engine runs (its plan time is read by the bench).</summary>
    public ScriptedModel? Model { get; private set; }

    public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape) =>
        Model = new ScriptedModel(model, script, asynchronous, cost);
}

/// <summary>
/// A stand-in for a GPU's step time: <paramref name="FixedUs"/> a step, <paramref name="PerTokenUs"/> a token, and
/// <paramref name="VerifyUs"/> more for a step that verifies drafts (a sequence of several query tokens).
/// </summary>
internal sealed record DeviceCost(double FixedUs, double PerTokenUs, double VerifyUs)
{
    public static DeviceCost Parse(string text) =>
        text.Split(':').Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray() is [var a, var b, var v]
            ? new(a, b, v) : throw new ArgumentException($"device cost '{text}': give FIXED:PER_TOKEN:VERIFY in microseconds");

    public long Ticks(ForwardBatch batch)
    {
        bool verifies = batch.NumTokens > batch.NumSeqs && batch.LogitsIndices.Length == batch.NumTokens;
        double us = FixedUs + PerTokenUs * batch.NumTokens + (verifies ? VerifyUs : 0);
        return (long)(us * System.Diagnostics.Stopwatch.Frequency / 1e6);
    }
}

/// <summary>
/// The next token at position p is script[(p + 1) % length]: real text for the detokenizer. Asynchronous, its
/// forward reports itself as still running (as a CUDA graph replay does) and is computed in Wait, so the
/// engine defers output processing exactly as it does on the GPU. With a <see cref="DeviceCost"/>, a forward
/// is done only that long after its launch (Wait spins until then), so host work after the launch overlaps it.
/// </summary>
internal sealed class ScriptedModel(IModel inner, int[] script, bool asynchronous, DeviceCost? cost = null) : IModel
{
    public ModelConfig Config => inner.Config;

    public int KvWidth => inner.KvWidth;

    public float[] Forward(ForwardBatch batch, PagedKvCache cache) => Answer(batch, batch.Sampling?.Inputs);

    /// <summary>Stopwatch ticks spent making sampling plans (on a GPU they overlap the forward).</summary>
    public long PlanTicks { get; set; }

    // As a GPU does, the plan is made when the forward is launched; the answer comes at Wait when asynchronous.
    public IForwardHandle ForwardAsync(ForwardBatch batch, PagedKvCache cache)
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var inputs = batch.Sampling?.Inputs;
        PlanTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
        long due = t0 + (cost?.Ticks(batch) ?? 0);
        float[] Run()
        {
            while (System.Diagnostics.Stopwatch.GetTimestamp() < due)
                Thread.SpinWait(20);
            return Answer(batch, inputs);
        }
        return asynchronous ? new Launched(Run) : new CompletedForward(Run());
    }

    private float[] Answer(ForwardBatch batch, DeviceSamplingInputs? sampling)
    {
        if (sampling == null)
            throw new NotSupportedException("the scripted model answers device sampling only");
        // The script's next token leads the candidates and is every row's draw; the logprob facts are made up.
        int k = sampling.Candidates, w = sampling.RowWidth;
        var output = new float[batch.LogitsIndices.Length * w];
        for (int r = 0; r < batch.LogitsIndices.Length; r++)
        {
            int pos = batch.Positions[batch.LogitsIndices[r]];
            var o = output.AsSpan(r * w, w);
            for (int i = 0; i < k; i++)
                (o[i], o[k + i]) = (10f - i, script[(pos + 1 + i) % script.Length]);
            if (!sampling.Processed)
                continue;
            (o[2 * k], o[2 * k + 1]) = (o[k], 1f);
            if (!sampling.Logprobs)
                continue;
            o[2 * k + 2] = 11f;
            for (int i = 0; i < k; i++)
                (o[2 * k + 3 + i], o[3 * k + 3 + i]) = (o[i], i + 1);
            (o[4 * k + 3], o[4 * k + 4]) = (o[0], 1);
            for (int i = 0; i < DeviceSamplingInputs.TopLogprobs; i++)
                (o[4 * k + 5 + i], o[4 * k + 5 + DeviceSamplingInputs.TopLogprobs + i]) = (o[Math.Min(i, k - 1)], o[k + Math.Min(i, k - 1)]);
        }
        return output;
    }

    public void Dispose() => inner.Dispose();

    private sealed class Launched(Func<float[]> run) : IForwardHandle
    {
        public bool IsAsynchronous => true;

        public float[] Wait() => run();
    }
}

/// <summary>The CPU backend for loading, plus a device top-k capability the scripted model answers itself.</summary>
internal sealed class TopKBackend : IBackend, IDeviceSampler
{
    private readonly CpuBackend _cpu = new();

    public string Name => "scripted";
    public int MaxCandidates => 64;
    public void ReduceToHost(Tensor logits, DeviceSamplingInputs inputs, Span<float> dst) => throw new NotSupportedException();
    public Tensor ForwardLogits(int rows, int vocab) => throw new NotSupportedException();
    public float[] SampleForward(Tensor logits, DeviceSamplingPlan plan, Func<int, float[]> array) => throw new NotSupportedException();
    public void EndForwardWithoutOutput() => throw new NotSupportedException();
    public Tensor LoadWeight(HostWeight weight) => _cpu.LoadWeight(weight);
    public Tensor Empty(params int[] shape) => _cpu.Empty(shape);
    // The scripted forward never touches the pool: one block's worth of tensors stands for all of them.
    public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth)
    {
        var small = _cpu.AllocateKvCache(numLayers, 1, blockSize, kvWidth);
        return new PagedKvCache(small.Keys, small.Values, numBlocks, blockSize);
    }
    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst) => throw new NotSupportedException();
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst) => throw new NotSupportedException();
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst) => throw new NotSupportedException();
    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst) => throw new NotSupportedException();
    public void Add(Tensor a, Tensor b, Tensor dst) => throw new NotSupportedException();
    public void SiluMul(Tensor gate, Tensor up, Tensor dst) => throw new NotSupportedException();
    public void GeluTanhMul(Tensor gate, Tensor up, Tensor dst) => throw new NotSupportedException();
    public void Scale(Tensor x, float factor) => throw new NotSupportedException();
    public void SoftCap(Tensor x, float cap) => throw new NotSupportedException();
    public void Relu(Tensor x) => throw new NotSupportedException();
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope) => throw new NotSupportedException();
    public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping) => throw new NotSupportedException();
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst) => throw new NotSupportedException();
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst) => throw new NotSupportedException();
    public void CopyToHost(Tensor src, Span<float> dst) => throw new NotSupportedException();
    public void Dispose() => _cpu.Dispose();
}
