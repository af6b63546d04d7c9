using Pagoda.Backends;

namespace Pagoda.Models;

/// <summary>The pre-norm decoders' residual step, with the backend's fused add + RMSNorm where it has one.</summary>
internal static class Residual
{
    /// <summary>x += hs, then hs = RMSNorm(x) · weight — x, hs [n, hidden].</summary>
    public static void AddNorm(IBackend b, Tensor x, Tensor hs, Tensor weight, float eps)
    {
        if (b is IFusedNormOps fused)
        {
            fused.AddRmsNorm(x, hs, weight, eps, hs);
            return;
        }
        b.Add(x, hs, x);
        b.RmsNorm(x, weight, eps, hs);
    }

    /// <summary>
    /// A layer's last residual add, x += delta; with the fused op it also makes the next sub-layer's input,
    /// hs = RMSNorm(x) · nextNorm (the next layer's input norm, or the final norm), which the caller then skips.
    /// </summary>
    public static void EndLayer(IBackend b, Tensor x, Tensor delta, Tensor nextNorm, float eps, Tensor hs)
    {
        if (b is IFusedNormOps fused)
            fused.AddRmsNorm(x, delta, nextNorm, eps, hs);
        else
            b.Add(x, delta, x);
    }
}
