namespace Pagoda.Backends.Cpu;

/// <summary>Elementwise activations.</summary>
internal static class Activation
{
    /// <summary>destination = gate * sigmoid(gate) * up.</summary>
    public static void SiluMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> destination)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            destination[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>x = max(x, 0).</summary>
    public static void Relu(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
            x[i] = MathF.Max(x[i], 0f);
    }

    /// <summary>destination = a + b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> destination)
    {
        for (int i = 0; i < a.Length; i++)
            destination[i] = a[i] + b[i];
    }
}
