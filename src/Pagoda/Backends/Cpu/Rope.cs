namespace Pagoda.Backends.Cpu;

/// <summary>Rotary position embedding, NeoX layout: element i pairs with i + headDim/2.</summary>
internal static class Rope
{
    /// <summary>Rotates every head of one token's row in place; cos and sin are scratch of headDim/2.</summary>
    public static void Apply(Span<float> row, int headDim, int position, ReadOnlySpan<float> invFreq, Span<float> cos, Span<float> sin)
    {
        int half = headDim / 2;
        for (int i = 0; i < half; i++)
        {
            // float32 product then cos/sin, as transformers computes its rotary tables.
            float angle = position * invFreq[i];
            cos[i] = MathF.Cos(angle);
            sin[i] = MathF.Sin(angle);
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
