namespace Pagoda.Backends;

/// <summary>How an MoE layer turns a token's router logits into its experts and their weights.</summary>
public enum MoeScoring
{
    /// <summary>Softmax over all experts, then the top k probabilities (Mixtral, Qwen3-MoE).</summary>
    SoftmaxTopK,

    /// <summary>The top k logits, then a softmax over just those (gpt-oss).</summary>
    TopKSoftmax,
}

/// <summary>The activation between an expert's gate/up and down projections.</summary>
public enum MoeActivation
{
    /// <summary>silu(gate) · up.</summary>
    SiluGated,

    /// <summary>
    /// gpt-oss's clamped SwiGLU: g = min(gate, limit), u = clamp(up, -limit, limit), then (u + 1) · g · sigmoid(alpha · g).
    /// </summary>
    ClampedSwiglu,
}

/// <summary>Routing and activation of one MoE layer (what vLLM's FusedMoE takes besides the weights).</summary>
/// <param name="TopK">Experts per token.</param>
/// <param name="Scoring">Softmax then top-k, or top-k then softmax.</param>
/// <param name="Renormalize">Divide the chosen experts' weights by their sum (Mixtral; Qwen3-MoE's norm_topk_prob).</param>
/// <param name="Activation">The experts' activation.</param>
public sealed record MoeSpec(int TopK, MoeScoring Scoring, bool Renormalize, MoeActivation Activation)
{
    /// <summary><see cref="MoeActivation.ClampedSwiglu"/>'s sigmoid slope.</summary>
    public float SwigluAlpha { get; init; } = 1.702f;

    /// <summary><see cref="MoeActivation.ClampedSwiglu"/>'s clamp.</summary>
    public float SwigluLimit { get; init; } = 7f;
}

/// <summary>
/// One layer's expert weights as the checkpoint stores them, in one of two forms. Per expert (Mixtral,
/// Qwen3-MoE): <see cref="Gate"/>[e] and <see cref="Up"/>[e] [intermediate, hidden] and <see cref="Down"/>[e]
/// [hidden, intermediate], Linear weights ([out, in]). Stacked (gpt-oss): <see cref="GateUp"/> [E, hidden,
/// 2·intermediate] and <see cref="DownStacked"/> [E, intermediate, hidden], both [in, out] per expert, with gate
/// and up interleaved along the output (column 2j is gate j, 2j + 1 is up j); its optional biases are
/// <see cref="GateUpBias"/> [E, 2·intermediate] (interleaved the same way) and <see cref="DownBias"/> [E, hidden].
/// </summary>
public sealed record MoeExpertWeights(int NumExperts, int HiddenSize, int IntermediateSize)
{
    /// <summary>Per-expert gate projections [intermediate, hidden]; null in the stacked form.</summary>
    public Tensor[]? Gate { get; init; }

    /// <summary>Per-expert up projections [intermediate, hidden]; null in the stacked form.</summary>
    public Tensor[]? Up { get; init; }

    /// <summary>Per-expert down projections [hidden, intermediate]; null in the stacked form.</summary>
    public Tensor[]? Down { get; init; }

    /// <summary>Stacked, interleaved gate/up [E, hidden, 2·intermediate]; null in the per-expert form.</summary>
    public Tensor? GateUp { get; init; }

    /// <summary>Stacked down [E, intermediate, hidden]; null in the per-expert form.</summary>
    public Tensor? DownStacked { get; init; }

    /// <summary>Stacked form: gate/up biases [E, 2·intermediate], interleaved like <see cref="GateUp"/>; null for none.</summary>
    public Tensor? GateUpBias { get; init; }

    /// <summary>Stacked form: down biases [E, hidden]; null for none.</summary>
    public Tensor? DownBias { get; init; }

    /// <summary>Whether this is the stacked (3-D) form.</summary>
    public bool IsStacked => GateUp != null;

    /// <summary>Every stored tensor (for weight accounting).</summary>
    public IEnumerable<Tensor?> Tensors =>
        (Gate ?? []).Concat(Up ?? []).Concat(Down ?? []).Append(GateUp).Append(DownStacked).Append(GateUpBias).Append(DownBias);
}

/// <summary>
/// One layer's experts in the form a backend runs them (made once at load by <see cref="IMoeOps.PrepareExperts"/>);
/// disposing it frees whatever copies that form made, never the stored weights.
/// </summary>
public abstract class MoeExperts : IDisposable
{
    /// <summary>Creates the descriptor.</summary>
    protected MoeExperts(int numExperts, int hiddenSize, int intermediateSize) =>
        (NumExperts, HiddenSize, IntermediateSize) = (numExperts, hiddenSize, intermediateSize);

    /// <summary>Experts in the layer.</summary>
    public int NumExperts { get; }

    /// <summary>Width of the input and output rows.</summary>
    public int HiddenSize { get; }

    /// <summary>Width of each expert's activation.</summary>
    public int IntermediateSize { get; }

    /// <inheritdoc />
    public virtual void Dispose() => GC.SuppressFinalize(this);
}
