using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// RoPE inverse frequencies and attention factor (default, linear, llama3, yarn, longrope), computed as
/// transformers' rope utilities do: float32 steps where transformers works on float32 tensors, double
/// where it works on Python floats.
/// </summary>
public static class RotaryEmbedding
{
    /// <summary>
    /// The model's rotary parameters over <see cref="ModelConfig.RotaryDim"/>; <paramref name="maxModelLen"/>
    /// (the engine's longest sequence) picks longrope's factor set.
    /// </summary>
    public static RotaryParams Create(ModelConfig config, int maxModelLen) =>
        Compute(config.RotaryDim, config.RopeTheta, config.RopeScaling, maxModelLen);

    /// <summary>Inverse frequencies [rotaryDim / 2] and attention factor for one rotary configuration.</summary>
    public static RotaryParams Compute(int rotaryDim, double theta, RopeScaling? scaling, int maxModelLen)
    {
        var inv = Default(rotaryDim, theta);
        return scaling?.Type switch
        {
            null => new RotaryParams(inv),
            "linear" => new RotaryParams(inv.Select(f => (float)(f / scaling.Factor)).ToArray()),
            "llama3" => new RotaryParams(Llama3(inv, scaling)),
            "yarn" => Yarn(rotaryDim, theta, scaling),
            "longrope" => LongRope(rotaryDim, theta, scaling, maxModelLen),
            _ => throw new NotSupportedException($"rope type '{scaling.Type}'"),
        };
    }

    /// <summary>
    /// inv_freq[i] = 1 / theta^(2i / rotaryDim), then scaled: [rotaryDim / 2]. Without the attention factor
    /// (yarn's and longrope's need <see cref="Compute"/>); longrope gets its short set.
    /// </summary>
    public static float[] InverseFrequencies(int rotaryDim, double theta, RopeScaling? scaling) =>
        Compute(rotaryDim, theta, scaling, maxModelLen: 0).InvFreq;

    // theta^(2i / dim) with the exponent in float32, as torch.arange(0, dim, 2).float() / dim gives it.
    private static double Power(double theta, int i, int dim) => Math.Pow(theta, (float)(2 * i) / dim);

    private static float[] Default(int dim, double theta)
    {
        var inv = new float[dim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = (float)(1.0 / Power(theta, i, dim));
        return inv;
    }

    // Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between blended.
    private static float[] Llama3(float[] inv, RopeScaling s)
    {
        double lowFreqWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        double highFreqWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        var result = new float[inv.Length];
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            double scaled = wavelen > lowFreqWavelen ? inv[i] / s.Factor : inv[i];
            bool medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
            if (medium)
            {
                double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                scaled = (1 - smooth) * scaled / s.Factor + smooth * scaled;
            }
            result[i] = (float)scaled;
        }
        return result;
    }

    /// <summary>
    /// YaRN: frequencies that turn more than beta_fast times over the original context keep their value
    /// (extrapolation), those turning fewer than beta_slow times are divided by the factor (interpolation), and
    /// a linear ramp over the frequency index blends the ones between. The cos/sin tables are multiplied by
    /// 0.1·ln(factor) + 1 (or DeepSeek's mscale ratio, or an explicit attention_factor).
    /// </summary>
    private static RotaryParams Yarn(int dim, double theta, RopeScaling s)
    {
        double factor = s.Factor;
        static double Mscale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
        double attention = s.AttentionFactor
            ?? (s.Mscale is { } m and not 0 && s.MscaleAllDim is { } all and not 0
                ? Mscale(factor, m) / Mscale(factor, all)
                : Mscale(factor, 1));

        // The (fractional) frequency index whose wavelength fits `rotations` times into the original context.
        double CorrectionDim(double rotations) =>
            dim * Math.Log(s.OriginalMaxPositionEmbeddings / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(s.BetaFast), high = CorrectionDim(s.BetaSlow);
        if (s.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, dim - 1);
        if (low == high)
            high += 0.001; // transformers' guard against a zero-width ramp

        var inv = new float[dim / 2];
        float lowF = (float)low, width = (float)(high - low), factorF = (float)factor;
        for (int i = 0; i < inv.Length; i++)
        {
            float pos = (float)Power(theta, i, dim);
            float extrapolation = 1f / pos, interpolation = 1f / (factorF * pos);
            float ramp = Math.Clamp((i - lowF) / width, 0f, 1f);
            float keep = 1f - ramp;          // share of the unscaled frequency
            inv[i] = interpolation * (1f - keep) + extrapolation * keep;
        }
        return new RotaryParams(inv, (float)attention);
    }

    /// <summary>
    /// LongRoPE (Phi-3.5, Phi-4-mini): inv_freq[i] = 1 / (ext[i] · theta^(2i / dim)) with ext the short or the
    /// long factor list; the attention factor is √(1 + ln(scale) / ln(original)) for scale = factor (else
    /// max_position_embeddings / original) above 1, unless the config sets attention_factor (transformers) or
    /// short_mscale / long_mscale (vLLM).
    /// </summary>
    /// <remarks>
    /// Which set when a sequence crosses original_max_position_embeddings: vLLM's choice. The set is fixed per
    /// engine — the long factors for every position (short prompts included) whenever max_model_len exceeds
    /// original_max_position_embeddings, the short ones otherwise — so keys already in the KV cache never hold
    /// a rotation from the other set. transformers instead switches per forward on the current length (long
    /// once the largest position + 1 exceeds the original), which with a cache leaves earlier keys rotated by
    /// the short set; to reproduce its short-prompt numbers here, run with --max-model-len at most the original.
    /// </remarks>
    private static RotaryParams LongRope(int dim, double theta, RopeScaling s, int maxModelLen)
    {
        bool useLong = maxModelLen > s.OriginalMaxPositionEmbeddings;
        var ext = (useLong ? s.LongFactor : s.ShortFactor) ?? throw new ArgumentException("longrope scaling without factor lists");
        if (ext.Count != dim / 2)
            throw new ArgumentException($"longrope factors have {ext.Count} entries for rotary dimension {dim}");
        var inv = new float[dim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1f / ((float)ext[i] * (float)Power(theta, i, dim));
        double attention = s.AttentionFactor
            ?? (useLong ? s.LongMscale : s.ShortMscale)
            ?? (s.Factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(s.Factor) / Math.Log(s.OriginalMaxPositionEmbeddings)));
        return new RotaryParams(inv, (float)attention);
    }
}
