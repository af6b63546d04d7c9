using Pagoda.Sampling;

namespace Pagoda.Tests.Sampling;

/// <summary>
/// The radix-select nucleus against its definition: sort the row (descending logit, ties by lower id), drop what
/// min-p drops, keep the shortest prefix whose integer mass reaches ceil(top_p · total).
/// </summary>
public class NucleusTests
{
    private static float[] Weights(float[] logits, float invT)
    {
        float max = logits.Max();
        return logits.Select(x => MathF.Exp((x - max) * invT)).ToArray();
    }

    // The kept ids by the definition, with a full sort.
    private static HashSet<int> Definition(float[] logits, float[] w, float topP, float minP)
    {
        var order = Enumerable.Range(0, logits.Length).Where(i => w[i] >= minP)
            .OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        if (topP >= 1f)
            return [.. order];
        ulong total = 0;
        foreach (int i in order)
            total += Nucleus.Quantum(w[i]);
        ulong target = Math.Max(1, (ulong)Math.Ceiling((double)topP * total)), sum = 0;
        var kept = new HashSet<int>();
        foreach (int i in order)
        {
            kept.Add(i);
            sum += Nucleus.Quantum(w[i]);
            if (sum >= target)
                break;
        }
        return kept;
    }

    private static HashSet<int> Found(float[] logits, float[] w, float topP, float minP)
    {
        var cut = Nucleus.Find(logits, w, topP, minP);
        return [.. Enumerable.Range(0, logits.Length).Where(i => w[i] >= minP && cut.Keeps(Nucleus.OrderKey(logits[i]), i))];
    }

    [Theory]
    [InlineData(1000, 0.9f, 0f, 1f)]
    [InlineData(5000, 0.5f, 0f, 0.6f)]
    [InlineData(5000, 0.95f, 0.05f, 1.5f)]
    [InlineData(151_936, 0.8f, 0f, 1f)]
    [InlineData(3000, 1f, 0.2f, 1f)]
    [InlineData(3000, 0.001f, 0f, 1f)]
    [InlineData(3000, 0.999f, 0f, 0.3f)]
    public void TheCutKeepsWhatTheDefinitionKeeps(int vocab, float topP, float minP, float invT)
    {
        var rng = new Random(vocab + (int)(topP * 1000));
        for (int trial = 0; trial < 6; trial++)
        {
            // Coarse values (many ties, also at the cut), some -inf, and one trial of a flat row.
            var logits = new float[vocab];
            for (int i = 0; i < vocab; i++)
                logits[i] = trial == 5 ? 1.5f : rng.Next(10) == 0 ? float.NegativeInfinity : MathF.Round((float)(rng.NextDouble() * 12 - 6), 1);
            var w = Weights(logits, invT);
            Assert.Equal(Definition(logits, w, topP, minP), Found(logits, w, topP, minP));
        }
    }

    [Fact]
    public void TiesAtTheCutKeepTheLowerIdsFirst()
    {
        float[] logits = [0f, 2f, 2f, 2f, 2f, -1f];
        var w = Weights(logits, 1f);
        // Four equal best tokens of weight 1 in a total of 4.185: top-p 0.45 (1.88) needs two, 0.5 (2.09) three,
        // the lowest ids first.
        Assert.Equal([1, 2], Found(logits, w, 0.45f, 0f).Order());
        Assert.Equal([1, 2, 3], Found(logits, w, 0.5f, 0f).Order());
        Assert.Equal([1], Found(logits, w, 0.01f, 0f).Order());
    }

    [Fact]
    public void OrderKeysOrderLogits()
    {
        float[] ascending = [float.NegativeInfinity, -1e30f, -2.5f, -0f, 0f, 1e-30f, 3f, float.PositiveInfinity];
        for (int i = 1; i < ascending.Length; i++)
            Assert.True(Nucleus.OrderKey(ascending[i - 1]) <= Nucleus.OrderKey(ascending[i]), $"{ascending[i - 1]} vs {ascending[i]}");
        Assert.True(Nucleus.OrderKey(-1f) < Nucleus.OrderKey(-0.5f));
    }

    [Fact]
    public void TopPDrawsFollowTheNucleusOverALargeRow()
    {
        // 2,000 tokens: 10 likely ones, the rest far below; top-p 0.7 at T 0.8 keeps a prefix of the likely ones.
        var rng = new Random(3);
        var logits = Enumerable.Range(0, 2000).Select(_ => (float)(rng.NextDouble() * 2 - 10)).ToArray();
        int[] likely = [17, 400, 5, 1999, 1234, 77, 600, 3, 1500, 42];
        for (int j = 0; j < likely.Length; j++)
            logits[likely[j]] = 3f - 0.3f * j;
        var p = new SamplingParams { Temperature = 0.8, TopP = 0.7 };
        var w = Weights(logits, 1 / 0.8f);
        var kept = Definition(logits, w, 0.7f, 0f);
        double mass = kept.Sum(i => (double)w[i]);
        var counts = new Dictionary<int, int>();
        const int draws = 20000;
        for (int d = 0; d < draws; d++)
        {
            int t = Sampler.Sample(logits, p, rng.NextDouble());
            Assert.Contains(t, kept);
            counts[t] = counts.GetValueOrDefault(t) + 1;
        }
        foreach (int i in kept)
        {
            double expect = w[i] / mass, freq = (double)counts.GetValueOrDefault(i) / draws;
            Assert.True(Math.Abs(freq - expect) <= 5 * Math.Sqrt(expect * (1 - expect) / draws) + 1e-9, $"token {i}: {freq:F4} vs {expect:F4}");
        }
    }
}
