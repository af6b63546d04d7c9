namespace Pagoda.Backends;

/// <summary>
/// Optional backend capability: reduce logits on the device so that only each row's best candidates
/// travel to the host instead of the whole vocabulary (greedy decoding needs one per row).
/// </summary>
public interface ILogitsTopK
{
    /// <summary>The largest k <see cref="CopyTopKToHost"/> accepts.</summary>
    int MaxLogitsTopK { get; }

    /// <summary>
    /// For each row of <paramref name="logits"/> [rows, vocab], the k largest entries, best first (ties
    /// by lower id, as a stable descending sort): dst[row·2k + i] is the i-th value and
    /// dst[row·2k + k + i] its id as a float (exact: ids are below 2^24).
    /// </summary>
    void CopyTopKToHost(Tensor logits, int k, Span<float> dst);
}
