using Pagoda.Sampling;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Sampling;

/// <summary>
/// The counter-based generator: Random123's known answers for Philox4x32-10, uniforms in [0, 1), and seeded
/// requests that draw the same tokens alone, in a batch of 32 and after preemption.
/// </summary>
public class PhiloxTests
{
    [Theory]
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void KnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint r0, uint r1, uint r2, uint r3) =>
        Assert.Equal((r0, r1, r2, r3), Philox.Block((c0, c1, c2, c3), (k0, k1)));

    [Fact]
    public void UniformsAreInRangeAndSpreadEvenly()
    {
        var buckets = new int[10];
        for (int i = 0; i < 100_000; i++)
        {
            double u = Philox.Uniform(12345, i);
            Assert.InRange(u, 0, 0.9999999999999999);
            buckets[(int)(u * 10)]++;
        }
        Assert.All(buckets, b => Assert.InRange(b, 9_500, 10_500));
        Assert.NotEqual(Philox.Uniform(1, 0), Philox.Uniform(2, 0));
        Assert.Equal(Philox.Uniform(7, 3), Philox.Uniform(7, 3));
    }

    /// <summary>With batch-invariant kernels, a seeded sampled request is the same alone, among 31 others, and recomputed after preemption.</summary>
    [Fact]
    public void SeededRequestsDrawTheSameAloneInABatchAndAfterPreemption()
    {
        var p = new SamplingParams { Temperature = 1.0, TopP = 0.95, Seed = 1234, MaxTokens = 40, IgnoreEos = true };
        PromptInput Prompt(int i) => $"Tell me a joke about the number {i}.";
        int[] Tokens(RequestOutput o) => [.. o.Outputs[0].TokenIds];

        using var roomy = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), BatchInvariant = true, NumKvBlocks = 512, MaxModelLen = 256 });
        int[] alone = Tokens(roomy.Generate([Prompt(0)], p)[0]);
        var batch = roomy.Generate(Enumerable.Range(0, 32).Select(Prompt).ToList(),
            Enumerable.Range(0, 32).Select(i => i == 0 ? p : p with { Seed = i }).ToList());
        Assert.Equal(alone, Tokens(batch[0]));

        // 32 requests of ~60 tokens in 48 blocks of 16: the newest are preempted and recomputed.
        using var tight = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), BatchInvariant = true, NumKvBlocks = 48, MaxModelLen = 256 });
        var squeezed = tight.Generate(Enumerable.Range(0, 32).Select(i => Prompt(31 - i)).ToList(),
            Enumerable.Range(0, 32).Select(i => i == 31 ? p : p with { Seed = 31 - i }).ToList());
        Assert.True(tight.Engine.Stats.NumPreemptions > 0, "nothing was preempted");
        Assert.Equal(alone, Tokens(squeezed[31]));
        for (int i = 1; i < 32; i++)
            Assert.Equal(Tokens(batch[i]), Tokens(squeezed[31 - i]));
    }
}
