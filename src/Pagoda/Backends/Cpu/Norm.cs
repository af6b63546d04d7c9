using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>RMSNorm and LayerNorm over contiguous groups, matching transformers' float32 formulas.</summary>
internal static class Norm
{
    /// <summary>destination = x / sqrt(mean(x²) + eps) * weight.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> destination)
    {
        float ss = Vec.Dot(x, x);
        float inv = 1f / MathF.Sqrt(ss / x.Length + eps);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(inv);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.Create(weight.Slice(i, 8)) * (Vector256.Create(x.Slice(i, 8)) * s);
                v.CopyTo(destination.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++)
            destination[i] = weight[i] * (x[i] * inv);
    }

    /// <summary>destination = (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as torch).</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps,
        Span<float> destination)
    {
        float mean = 0;
        foreach (float v in x)
            mean += v;
        mean /= x.Length;
        float var = 0;
        foreach (float v in x)
            var += (v - mean) * (v - mean);
        var /= x.Length;
        float inv = 1f / MathF.Sqrt(var + eps);
        for (int i = 0; i < x.Length; i++)
            destination[i] = (x[i] - mean) * inv * weight[i] + bias[i];
    }
}
