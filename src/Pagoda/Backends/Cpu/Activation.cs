using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>Elementwise activations, 8 lanes at a time with a scalar tail.</summary>
internal static unsafe class Activation
{
    /// <summary>destination = gate * sigmoid(gate) * up (destination may alias gate).</summary>
    public static void SiluMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> destination)
    {
        int n = gate.Length, i = 0;
        fixed (float* g = gate, u = up, d = destination)
        {
            var one = Vector256.Create(1f);
            for (; i <= n - 8; i += 8)
            {
                var gv = Vector256.Load(g + i);
                (gv / (one + VecExp.Exp(-gv)) * Vector256.Load(u + i)).Store(d + i);
            }
            for (; i < n; i++)
                d[i] = g[i] / (1f + VecExp.Exp(-g[i])) * u[i];
        }
    }

    // GELU's tanh approximation is 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³); since
    // 0.5·(1 + tanh(u)) = 1 / (1 + e^(-2u)) it is computed as x / (1 + e^(-2u)), so it needs only the vector exp.
    private const float GeluBeta = 0.7978845608028654f;   // √(2/π)
    private const float GeluKappa = 0.044715f;

    /// <summary>destination = gelu_tanh(gate) * up (destination may alias gate).</summary>
    public static void GeluTanhMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> destination)
    {
        int n = gate.Length, i = 0;
        fixed (float* g = gate, u = up, d = destination)
        {
            var one = Vector256.Create(1f);
            var minusTwoBeta = Vector256.Create(-2f * GeluBeta);
            var kappa = Vector256.Create(GeluKappa);
            for (; i <= n - 8; i += 8)
            {
                var x = Vector256.Load(g + i);
                var inner = x + kappa * (x * x * x);
                (x / (one + VecExp.Exp(minusTwoBeta * inner)) * Vector256.Load(u + i)).Store(d + i);
            }
            for (; i < n; i++)
                d[i] = GeluTanh(g[i]) * u[i];
        }
    }

    /// <summary>gelu_tanh(x) for one value, in the vector loop's formula.</summary>
    public static float GeluTanh(float x) => x / (1f + VecExp.Exp(-2f * GeluBeta * (x + GeluKappa * (x * x * x))));

    /// <summary>x = x * factor.</summary>
    public static void Scale(Span<float> x, float factor)
    {
        int n = x.Length, i = 0;
        fixed (float* p = x)
        {
            var f = Vector256.Create(factor);
            for (; i <= n - 8; i += 8)
                (Vector256.Load(p + i) * f).Store(p + i);
            for (; i < n; i++)
                p[i] *= factor;
        }
    }

    /// <summary>x = cap · tanh(x / cap), in transformers' order: divide, tanh, multiply, each rounded to float32.</summary>
    public static void SoftCap(Span<float> x, float cap)
    {
        foreach (ref float v in x)
            v = MathF.Tanh(v / cap) * cap;
    }

    /// <summary>x = max(x, 0).</summary>
    public static void Relu(Span<float> x)
    {
        int n = x.Length, i = 0;
        fixed (float* p = x)
        {
            for (; i <= n - 8; i += 8)
                Vector256.Max(Vector256.Load(p + i), Vector256<float>.Zero).Store(p + i);
            for (; i < n; i++)
                p[i] = MathF.Max(p[i], 0f);
        }
    }

    /// <summary>destination = a + b (destination may alias a).</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> destination)
    {
        int n = a.Length, i = 0;
        fixed (float* pa = a, pb = b, d = destination)
        {
            for (; i <= n - 8; i += 8)
                (Vector256.Load(pa + i) + Vector256.Load(pb + i)).Store(d + i);
            for (; i < n; i++)
                d[i] = pa[i] + pb[i];
        }
    }
}
