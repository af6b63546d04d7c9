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
}
