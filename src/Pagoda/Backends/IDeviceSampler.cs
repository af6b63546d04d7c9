namespace Pagoda.Backends;

/// <summary>
/// Optional backend capability: process and reduce logits rows on the device so that only each row's best
/// candidates (and what sampling and logprobs need besides) travel to the host instead of the whole vocabulary.
/// </summary>
public interface IDeviceSampler
{
    /// <summary>The most candidates per row <see cref="ReduceToHost"/> returns.</summary>
    int MaxCandidates { get; }

    /// <summary>
    /// Applies <paramref name="inputs"/> to <paramref name="logits"/> [rows, vocab] and writes each row's
    /// <see cref="DeviceSamplingInputs.RowWidth"/> floats, laid out as <see cref="DeviceSamplingInputs"/> describes,
    /// into <paramref name="dst"/>. Pagoda.Sampling.DeviceSamplingReference is the same contract on the host.
    /// </summary>
    void ReduceToHost(Tensor logits, DeviceSamplingInputs inputs, Span<float> dst);

    /// <summary>
    /// Where a forward that ends in <see cref="SampleForward"/> puts its [rows, vocab] logits (a captured forward's
    /// live at a fixed address that the sampling after its replay reads). Dispose it after <see cref="SampleForward"/>.
    /// </summary>
    Tensor ForwardLogits(int rows, int vocab);

    /// <summary>
    /// The forward's last step: its output from <paramref name="logits"/> (from <see cref="ForwardLogits"/>), the
    /// reduction <paramref name="plan"/>'s inputs ask for, or the whole rows when it makes none, in an array from
    /// <paramref name="array"/> (given its length in floats). The plan is asked for once the forward is launched,
    /// so the host makes it while the device computes; an asynchronous device may fill the array only when the
    /// forward is waited for.
    /// </summary>
    float[] SampleForward(Tensor logits, DeviceSamplingPlan plan, Func<int, float[]> array);

    /// <summary>
    /// The last step of a forward whose logits leave through the collectives (a tensor-parallel worker's: rank 0
    /// samples): a captured forward's graph ends here and is launched, as <see cref="SampleForward"/> would.
    /// </summary>
    void EndForwardWithoutOutput();
}
