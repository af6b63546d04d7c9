namespace Pagoda.Backends;

/// <summary>
/// What a RoPE op needs besides positions: the inverse frequencies of the rotated pairs and the factor the
/// cos and sin tables are multiplied by.
/// </summary>
/// <param name="InvFreq">[rotaryDim / 2]; rotaryDim may be less than headDim (partial rotary): element i of a head
/// pairs with i + rotaryDim / 2 for i &lt; rotaryDim / 2, and the elements from rotaryDim on pass through.</param>
/// <param name="AttentionFactor">YaRN's and LongRoPE's attention scaling (1 otherwise).</param>
public sealed record RotaryParams(float[] InvFreq, float AttentionFactor = 1f)
{
    /// <summary>Elements of each head that are rotated.</summary>
    public int RotaryDim => 2 * InvFreq.Length;
}
