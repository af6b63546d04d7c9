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
}
