using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Models;

/// <summary>
/// yarn and longrope inverse frequencies and attention factors against values worked out by hand from the
/// definitions (YaRN paper; LongRoPE as Phi-3 ships it), not from the implementation's own steps.
/// </summary>
public class RotaryEmbeddingTests
{
    // Relative tolerance: the implementation rounds to float32 along the way.
    private static void Close(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 2e-6 * Math.Abs(expected), $"{what}: expected {expected}, got {actual}");

    // The unscaled RoPE frequency of pair i over a rotary dimension: theta^(-2i / dim).
    private static double Plain(double theta, int i, int dim) => Math.Pow(theta, -2.0 * i / dim);

    [Fact]
    public void YarnTinyQwen2()
    {
        // tiny-qwen2-yarn: dim 32, theta 1e6, factor 4, original 64, beta 32 / 1, truncate.
        // Correction dims: 32·ln(64 / (β·2π)) / (2·ln 1e6) = -1.33 for β = 32 and 2.69 for β = 1, so the ramp
        // runs from 0 to 3 after floor / ceil. A pair keeps k = 1 - clamp(i / 3) of its own frequency and takes the
        // rest divided by 4: inv = plain · (1/4 + 3k/4), i.e. 1, 3/4, 1/2 of plain for i = 0, 1, 2, then plain / 4.
        var s = new RopeScaling("yarn", 4.0, OriginalMaxPositionEmbeddings: 64);
        var r = RotaryEmbedding.Compute(32, 1e6, s, maxModelLen: 4096);
        Assert.Equal(16, r.InvFreq.Length);
        double[] share = [1, 0.75, 0.5];
        for (int i = 0; i < 16; i++)
            Close(Plain(1e6, i, 32) * (i < 3 ? share[i] : 0.25), r.InvFreq[i], $"inv_freq[{i}]");
        Close(1 + 0.1 * Math.Log(4), r.AttentionFactor, "attention factor"); // 1.1386
    }

    [Fact]
    public void YarnGptOssStyleWithoutTruncation()
    {
        // gpt-oss: dim 64, theta 150000, factor 32, original 64, beta 32 / 1, truncate false. The low bound
        // (-3.07) clamps to 0; the high one stays fractional: 64·ln(64 / 2π) / (2·ln 150000) = 32·ln(32/π) / ln 150000.
        var s = new RopeScaling("yarn", 32.0, OriginalMaxPositionEmbeddings: 64) { Truncate = false };
        var r = RotaryEmbedding.Compute(64, 150000, s, maxModelLen: 4096);
        double high = 32 * Math.Log(32 / Math.PI) / Math.Log(150000);
        Assert.InRange(high, 6.2317, 6.2318);
        for (int i = 0; i < 32; i++)
        {
            double keep = 1 - Math.Min(i / high, 1);
            Close(Plain(150000, i, 64) * (1.0 / 32 + 31.0 / 32 * keep), r.InvFreq[i], $"inv_freq[{i}]");
        }
        Close(1 + 0.1 * Math.Log(32), r.AttentionFactor, "attention factor"); // 1.3466

        // Truncated, the same bounds become 0 and 7: pair 6 then keeps 1/7 of its own frequency instead of 3.7%.
        var truncated = RotaryEmbedding.Compute(64, 150000, s with { Truncate = true }, maxModelLen: 4096);
        Close(Plain(150000, 6, 64) * (1.0 / 32 + 31.0 / 32 / 7), truncated.InvFreq[6], "truncated inv_freq[6]");
    }

    [Fact]
    public void YarnBetasMoveTheRamp()
    {
        // beta_fast 8, beta_slow 2 over dim 32, theta 1e4, original 256: 32·ln(256 / (β·2π)) / (2·ln 1e4) gives
        // 2.83 and 5.24, so floor / ceil make the ramp run from 2 to 6 (width 4).
        var s = new RopeScaling("yarn", 8.0, OriginalMaxPositionEmbeddings: 256) { BetaFast = 8, BetaSlow = 2 };
        var r = RotaryEmbedding.Compute(32, 1e4, s, maxModelLen: 4096);
        for (int i = 0; i < 16; i++)
        {
            double keep = 1 - Math.Clamp((i - 2) / 4.0, 0, 1);
            Close(Plain(1e4, i, 32) * (1.0 / 8 + 7.0 / 8 * keep), r.InvFreq[i], $"inv_freq[{i}]");
        }
    }

    [Fact]
    public void YarnAttentionFactorVariants()
    {
        var s = new RopeScaling("yarn", 40.0, OriginalMaxPositionEmbeddings: 4096);
        float Factor(RopeScaling x) => RotaryEmbedding.Compute(64, 10000, x, maxModelLen: 4096).AttentionFactor;
        double ln40 = Math.Log(40);
        Close(1 + 0.1 * ln40, Factor(s), "default");
        // DeepSeek-V3: mscale = mscale_all_dim cancel out.
        Close(1.0, Factor(s with { Mscale = 1.0, MscaleAllDim = 1.0 }), "mscale 1 / 1");
        Close((1 + 0.1 * 0.707 * ln40) / (1 + 0.1 * ln40), Factor(s with { Mscale = 0.707, MscaleAllDim = 1.0 }), "mscale 0.707 / 1");
        // mscale alone is not used (transformers needs both).
        Close(1 + 0.1 * ln40, Factor(s with { Mscale = 0.707 }), "mscale alone");
        Close(1.25, Factor(s with { AttentionFactor = 1.25, Mscale = 1.0, MscaleAllDim = 1.0 }), "explicit");
        Close(1.0, Factor(s with { Factor = 1.0 }), "factor 1");
    }

    // Phi-4-mini-like: rotary dim 24 (head 32 · 0.75), theta 1e4, 16384 positions over an original 4096.
    private static readonly RopeScaling LongRope = new("longrope", 16384.0 / 4096, OriginalMaxPositionEmbeddings: 4096)
    {
        ShortFactor = Enumerable.Range(0, 12).Select(i => 1 + i / 100.0).ToArray(),
        LongFactor = Enumerable.Range(0, 12).Select(i => 1.0 + i).ToArray(),
    };

    [Fact]
    public void LongRopePicksTheSetFromMaxModelLen()
    {
        // Within the original context the short set divides the plain frequencies, beyond it the long set.
        var shortSet = RotaryEmbedding.Compute(24, 1e4, LongRope, maxModelLen: 4096);
        var longSet = RotaryEmbedding.Compute(24, 1e4, LongRope, maxModelLen: 4097);
        for (int i = 0; i < 12; i++)
        {
            Close(Plain(1e4, i, 24) / (1 + i / 100.0), shortSet.InvFreq[i], $"short inv_freq[{i}]");
            Close(Plain(1e4, i, 24) / (1 + i), longSet.InvFreq[i], $"long inv_freq[{i}]");
        }
        // Both sets share √(1 + ln 4 / ln 4096) = √(1 + 2/12) = √(7/6) = 1.0801.
        Close(Math.Sqrt(7.0 / 6), shortSet.AttentionFactor, "short attention factor");
        Close(Math.Sqrt(7.0 / 6), longSet.AttentionFactor, "long attention factor");
    }

    [Fact]
    public void LongRopeAttentionFactorOverrides()
    {
        float Factor(RopeScaling s, int maxModelLen) => RotaryEmbedding.Compute(24, 1e4, s, maxModelLen).AttentionFactor;
        Close(1.2, Factor(LongRope with { AttentionFactor = 1.2, ShortMscale = 0.9 }, 4096), "attention_factor");
        var mscales = LongRope with { ShortMscale = 0.9, LongMscale = 1.3 };
        Close(0.9, Factor(mscales, 4096), "short_mscale");
        Close(1.3, Factor(mscales, 8192), "long_mscale");
        Close(1.0, Factor(LongRope with { Factor = 1.0 }, 8192), "no extension");
    }

    [Fact]
    public void PartialRotaryPutsTheRotaryDimensionInTheExponent()
    {
        // tiny-phi3: head 32, partial 0.75 → 12 pairs with theta^(-2i / 24), not theta^(-2i / 32).
        var config = ModelFolder.Open(TestPaths.Model("tiny-phi3")).Config;
        var r = RotaryEmbedding.Create(config, 4096);
        Assert.Equal(12, r.InvFreq.Length);
        Assert.Equal(24, r.RotaryDim);
        for (int i = 0; i < 12; i++)
            Close(Plain(1e4, i, 24), r.InvFreq[i], $"inv_freq[{i}]");
        Assert.Equal(1f, r.AttentionFactor);
    }
}
