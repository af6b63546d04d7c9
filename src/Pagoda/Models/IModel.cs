using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>A causal LM forward over a <see cref="ForwardBatch"/> and the paged KV pool.</summary>
public interface IModel : IDisposable
{
    /// <summary>The model's architecture facts.</summary>
    ModelConfig Config { get; }

    /// <summary>Floats per token per layer in each of the K and V pools (numKvHeads * headDim).</summary>
    int KvWidth { get; }

    /// <summary>Bytes of the weights the forward uses (each tensor once; quantized copies instead of their sources).</summary>
    long WeightBytes => 0;

    /// <summary>
    /// Runs the batch, writing its keys and values into <paramref name="cache"/>, and returns the logits of
    /// the rows in <see cref="ForwardBatch.LogitsIndices"/>: [numOutputs, vocab], row-major (with
    /// <see cref="ForwardBatch.ReturnHiddenStates"/>, their final-normed hidden states: [numOutputs, hidden]).
    /// The array may be the model's own, reused: it is valid until the model's next forward.
    /// </summary>
    float[] Forward(ForwardBatch batch, PagedKvCache cache);

    /// <summary>
    /// Starts <see cref="Forward"/> and returns without waiting for the device where it can (CUDA graph
    /// replays); the batch and the pool's blocks must stay as they are until the handle's Wait returns.
    /// Synchronous models keep this default, which runs the forward to completion.
    /// </summary>
    IForwardHandle ForwardAsync(ForwardBatch batch, PagedKvCache cache) => new CompletedForward(Forward(batch, cache));
}
