namespace Pagoda.Backends;

/// <summary>
/// Optional backend capability: mixture-of-experts feed-forward layers (the shape of vLLM's FusedMoE). The
/// model computes the router logits with an ordinary <see cref="IBackend.Linear"/>; the backend routes each
/// token to its top-k experts, runs only the experts chosen, and sums their outputs with the routing weights.
/// A backend without it cannot run MoE models.
/// </summary>
public interface IMoeOps
{
    /// <summary>
    /// Turns one layer's stored expert weights (either form of <see cref="MoeExpertWeights"/>) into the form
    /// <see cref="FusedMoe"/> runs; called once per layer at load time.
    /// </summary>
    MoeExperts PrepareExperts(MoeExpertWeights stored);

    /// <summary>
    /// dst [n, hidden] = Σ over each token's top-k experts e of weight(e) · expert_e(x), for x [n, hidden] and
    /// routerLogits [n, numExperts]; <paramref name="spec"/> says how the experts are picked and weighted and
    /// which activation they use. A token's experts' outputs are summed in a fixed order (by rank in its top-k), so
    /// with batch-invariant kernels (<see cref="BackendOptions.BatchInvariant"/>) its result is the same in any batch.
    /// </summary>
    void FusedMoe(Tensor x, Tensor routerLogits, MoeExperts experts, MoeSpec spec, Tensor dst);
}
