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

    public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex) => new Backend(new CpuBackend(args.ResolvedBackendOptions()), this);

    public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen) => args.NumKvBlocks ?? 64;

    public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape) => model;

    private sealed class Backend(CpuBackend cpu, ReferenceSamplingDevice owner) : OpsOnly(cpu), IDeviceSampler
    {
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

        public Tensor ForwardLogits(int rows, int vocab) => cpu.Empty(rows, vocab);

        public void EndForwardWithoutOutput()   // nothing is deferred: the forward ran to completion
        {
        }

        // As the GPU does it: the plan is asked for only after the forward's logits exist.
        public float[] SampleForward(Tensor logits, DeviceSamplingPlan plan, Func<int, float[]> array)
        {
            var inputs = plan.Inputs;
            var dst = array(inputs == null ? (int)logits.NumElements : logits.Rows * inputs.RowWidth);
            if (inputs == null)
                cpu.CopyToHost(logits, dst);
            else
                ReduceToHost(logits, inputs, dst);
            return dst;
        }
    }
}
