using Pagoda.Sampling;

namespace Pagoda.Tests.Sampling;

/// <summary>
/// Sampling from a row's best candidates (what a GPU top-k reduction returns) draws exactly the tokens
/// the full-row sampler draws, for the requests the model runner sends down that path.
/// </summary>
public class SampleCandidatesTests
{
    private static (float[] Values, int[] Ids) Best(float[] logits, int k)
    {
        var ids = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(k).ToArray();
        return (ids.Select(i => logits[i]).ToArray(), ids);
    }

    [Theory]
    [InlineData(0.0, 0, 1.0, 0.0)]
    [InlineData(0.8, 20, 1.0, 0.0)]
    [InlineData(1.0, 64, 0.9, 0.0)]
    [InlineData(1.3, 40, 0.95, 0.05)]
    [InlineData(0.5, 1, 1.0, 0.0)]
    public void SameDrawsAsTheFullRow(double temperature, int topK, double topP, double minP)
    {
        var data = new Random(5);
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP };
        for (int trial = 0; trial < 50; trial++)
        {
            // Coarse logits so that ties (broken by lower id) occur among the candidates.
            var logits = Enumerable.Range(0, 5000).Select(_ => MathF.Round((float)(data.NextDouble() * 12 - 6), 1)).ToArray();
            var (values, ids) = Best(logits, p.IsGreedy ? 1 : 64);
            for (int draw = 0; draw < 20; draw++)
            {
                double u = Philox.Uniform(trial, draw);
                Assert.Equal(Sampler.Sample(logits, p, u), Sampler.SampleCandidates(values, ids, p, u));
            }
        }
    }
}
