namespace Pagoda.Backends;

/// <summary>Optional backend capability: fused ops a model may use instead of their unfused sequence.</summary>
public interface IFusedNormOps
{
    /// <summary>residual += delta, then dst = RMSNorm(residual) · weight (dst may alias delta).</summary>
    void AddRmsNorm(Tensor residual, Tensor delta, Tensor weight, float eps, Tensor dst);
}
