namespace Pagoda.Backends.Cpu;

/// <summary>
/// Rotary position embedding, NeoX layout: element i pairs with i + rotaryDim/2, and elements from rotaryDim
/// on (a partial rotary) pass through.
/// </summary>
internal static class Rope
{
    /// <summary>Rotates every head of one token's row in place; cos and sin are scratch of at least rotaryDim/2.</summary>
    public static void Apply(Span<float> row, int headDim, int position, RotaryParams rope, Span<float> cos, Span<float> sin)
    {
        var invFreq = rope.InvFreq;
        int half = invFreq.Length;
        float factor = rope.AttentionFactor;
        for (int i = 0; i < half; i++)
        {
            // float32 product then cos/sin (then the attention factor), as transformers computes its rotary tables.
            float angle = position * invFreq[i];
            cos[i] = MathF.Cos(angle) * factor;
            sin[i] = MathF.Sin(angle) * factor;
        }
        for (int h = 0; h < row.Length; h += headDim)
        {
            var head = row.Slice(h, headDim);
            for (int i = 0; i < half; i++)
            {
                float a = head[i], b = head[i + half];
                head[i] = a * cos[i] - b * sin[i];
                head[i + half] = b * cos[i] + a * sin[i];
            }
        }
    }
}
