namespace Pagoda.Backends;

/// <summary>
/// Everything a model forward needs about one step, flattened over the scheduled sequences
/// (vLLM's attention metadata). Sequence i owns tokens QueryStartLoc[i] .. QueryStartLoc[i+1].
/// </summary>
public sealed record ForwardBatch(
    int[] InputIds,      // [numTokens]
    int[] Positions,     // [numTokens]   absolute position of each token in its sequence
    int[] SlotMapping,   // [numTokens]   KV pool slot each token's key/value is written to
    int[][] BlockTables, // [numSeqs][]   block ids holding each sequence's context, in order
    int[] QueryStartLoc, // [numSeqs + 1] prefix sums of scheduled tokens per sequence
    int[] SeqLens,       // [numSeqs]     context length after this step (cached + scheduled)
    int[] LogitsIndices) // [numOutputs]  token rows whose logits the caller wants
{
    /// <summary>Tokens in this step.</summary>
    public int NumTokens => InputIds.Length;

    /// <summary>Sequences in this step.</summary>
    public int NumSeqs => SeqLens.Length;

    /// <summary>
    /// Pooling (embeddings): the model returns the final-normed hidden states of the rows in
    /// <see cref="LogitsIndices"/> instead of their logits.
    /// </summary>
    public bool ReturnHiddenStates { get; init; }

    /// <summary>
    /// When set (and the backend implements <see cref="IDeviceSampler"/>), the model returns for each logits row
    /// only what the plan's inputs ask the device to reduce it to: [numOutputs, RowWidth], or the whole rows when the
    /// plan makes no inputs. The device asks for the inputs once the forward is launched. Null returns full logits.
    /// </summary>
    public DeviceSamplingPlan? Sampling { get; init; }
}
