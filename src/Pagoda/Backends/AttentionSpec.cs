namespace Pagoda.Backends;

/// <summary>
/// One layer's attention: head counts and width, the score scale, and the per-family variations of the
/// softmax over each query's keys.
/// </summary>
/// <param name="NumHeads">Query heads.</param>
/// <param name="NumKvHeads">Key/value heads (numHeads a multiple of it).</param>
/// <param name="HeadDim">Width of one head.</param>
/// <param name="Scale">Multiplies q · k before everything else (1/√headDim unless the config says otherwise).</param>
public sealed record AttentionSpec(int NumHeads, int NumKvHeads, int HeadDim, float Scale)
{
    /// <summary>
    /// Keys a query sees, its own position included (Mistral's and Gemma's sliding layers); 0 for all of them.
    /// A query at position p attends to positions (p - window, p].
    /// </summary>
    public int SlidingWindow { get; init; }

    /// <summary>Gemma 2's soft cap: a score s becomes cap · tanh(s / cap) before the softmax; 0 for none.</summary>
    public float SoftCap { get; init; }

    /// <summary>
    /// gpt-oss's attention sinks: one learned logit per query head [numHeads] that joins each softmax's
    /// denominator without a value; null for none.
    /// </summary>
    public float[]? Sinks { get; init; }
}
