using Pagoda.Backends;
using Pagoda.Cuda;
using Pagoda.Requests;
using Pagoda.Sampling;

namespace Pagoda.Tests.Cuda;

/// <summary>
/// The batch shapes the CUDA graphs replay, checked on the CPU: which batches qualify, how a verification step whose
/// sequences carry different numbers of drafts is spread to one query length, and that spread sampling rows reduce as
/// the original ones do.
/// </summary>
public class GraphBatchesTests
{
    // Three sequences of 1, 3 and 2 tokens at positions 10, 20.. and 30.., every row sampled.
    private static ForwardBatch Mixed() => new(
        [1, 2, 3, 4, 5, 6], [10, 20, 21, 22, 30, 31], [100, 200, 201, 202, 300, 301],
        [[6], [12, 13], [18, 19]], [0, 1, 4, 6], [11, 23, 32], [0, 1, 2, 3, 4, 5]);

    [Fact]
    public void MaxQueryTakesOnlyBatchesWhoseEveryRowIsSampled()
    {
        var b = Mixed();
        Assert.Equal(3, GraphBatches.MaxQuery(b, 17));
        Assert.Equal(0, GraphBatches.MaxQuery(b, 2));                                   // a query longer than graphs take
        Assert.Equal(0, GraphBatches.MaxQuery(b with { LogitsIndices = [0, 3, 5] }, 17));  // a prefill's last rows only
        Assert.Equal(0, GraphBatches.MaxQuery(b with { ReturnHiddenStates = true }, 17));
        Assert.Equal(0, GraphBatches.MaxQuery(new ForwardBatch([], [], [], [], [0], [], []), 17));
        var decode = new ForwardBatch([7, 8], [5, 9], [5, 9], [[0], [1]], [0, 1, 2], [6, 10], [0, 1]);
        Assert.Equal(1, GraphBatches.MaxQuery(decode, 17));
    }

    [Fact]
    public void OnlyCheapFillsAreWorthIt()
    {
        Assert.True(GraphBatches.WorthSpreading(6, 3, 3));        // 9 tokens for 6: a small step
        Assert.True(GraphBatches.WorthSpreading(100, 40, 5));     // 200 for 100: at most double
        Assert.False(GraphBatches.WorthSpreading(260, 256, 5));   // 1,280 for 260: eager
        Assert.False(GraphBatches.WorthSpreading(60, 40, 5));     // 200 for 60, past a small step
    }

    [Fact]
    public void SpreadFillsEachQueryAtItsLastPositionWritingTheScratchSlot()
    {
        var (s, rowAt) = GraphBatches.Spread(Mixed(), 3, scratchSlot: 999);
        Assert.Equal([1, 0, 0, 2, 3, 4, 5, 6, 0], s.InputIds);
        Assert.Equal([10, 10, 10, 20, 21, 22, 30, 31, 31], s.Positions);
        Assert.Equal([100, 999, 999, 200, 201, 202, 300, 301, 999], s.SlotMapping);
        Assert.Equal([0, 3, 6, 9], s.QueryStartLoc);
        Assert.Equal([11, 23, 32], s.SeqLens);
        Assert.Equal(Enumerable.Range(0, 9), s.LogitsIndices);
        Assert.Equal([0, 3, 4, 5, 6, 7], rowAt);
        var padded = GraphBatches.Pad(s, 4, 3, 999, [77]);
        Assert.Equal([0, 3, 6, 9, 12], padded.QueryStartLoc);
        Assert.Equal([11, 23, 32, 1], padded.SeqLens);
        Assert.Equal([999, 999, 999], padded.SlotMapping[9..]);
        Assert.Equal([0, 0, 0], padded.Positions[9..]);
        Assert.Equal([77], padded.BlockTables[3]);
        Assert.Equal(Enumerable.Range(0, 12), padded.LogitsIndices);
    }

    [Fact]
    public void SpreadSamplingRowsReduceAsTheOriginalRows()
    {
        const int vocab = 300;
        IReadOnlySet<int> eos = new HashSet<int> { 299 };
        var penalised = new Request("a", [5, 6, 7, 6, 40], new SamplingParams { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.1, Seed = 3 }, 8, 1, eos);
        var biased = new Request("b", [9, 9, 9], new SamplingParams { Temperature = 1, LogitBias = new Dictionary<int, double> { [3] = 5 }, PresencePenalty = 0.5, Seed = 4 }, 8, 1, eos);
        var greedy = new Request("c", [1, 2], new SamplingParams { Temperature = 0, Logprobs = 3 }, 8, 1, eos);
        // Rows as a verification step makes them: 1 for a, 3 for b (its token and two drafts), 2 for c.
        LogitsRow[] rows = [new(penalised), new(biased), new(biased) { Drafts = new[] { 9 } }, new(biased) { Drafts = new[] { 9, 4 } },
            new(greedy), new(greedy) { Drafts = new[] { 2 } }];
        var plan = DeviceSampling.Plan(rows, 64, vocab, [])!;
        var rng = new Random(5);
        var logits = Enumerable.Range(0, rows.Length * vocab).Select(_ => (float)rng.NextDouble() * 8).ToArray();
        var expected = new float[rows.Length * plan.RowWidth];
        DeviceSamplingReference.Reduce(logits, vocab, plan, expected);

        var (spreadBatch, rowAt) = GraphBatches.Spread(Mixed() with { Sampling = DeviceSamplingPlan.Of(plan) }, 3, 999);
        var spread = spreadBatch.Sampling!.Inputs!;
        var spreadLogits = Enumerable.Range(0, 9 * vocab).Select(_ => (float)rng.NextDouble() * 8).ToArray();
        for (int r = 0; r < rows.Length; r++)
            logits.AsSpan(r * vocab, vocab).CopyTo(spreadLogits.AsSpan(rowAt[r] * vocab));
        var got = new float[9 * plan.RowWidth];
        DeviceSamplingReference.Reduce(spreadLogits, vocab, spread, got);
        for (int r = 0; r < rows.Length; r++)
            Assert.Equal(expected.AsSpan(r * plan.RowWidth, plan.RowWidth).ToArray(), got.AsSpan(rowAt[r] * plan.RowWidth, plan.RowWidth).ToArray());
        // A filler row is plain: no draw, no edits, no penalties.
        Assert.Equal(spread.EditOffsets[1], spread.EditOffsets[3]);
        Assert.Equal(spread.PenaltyOffsets[1], spread.PenaltyOffsets[3]);
        Assert.Equal(-1f, got[1 * plan.RowWidth + 2 * plan.Candidates]);
    }

    [Fact]
    public void SpreadMasksFollowTheirRowsAndFillerRowsAllowEverything()
    {
        // Row r of the batch allows only token r (one word a row); a spread moves each row's word to its new row.
        var inputs = new DeviceSamplingInputs(6, 1)
        {
            Processed = true, Params = new int[6 * DeviceSamplingInputs.ParamWidth], EditOffsets = new int[7], PenaltyOffsets = new int[7],
            MaskWords = 1, Masks = bits => { for (int r = 0; r < 6; r++) bits[r] = 1 << r; },
        };
        var (spread, rowAt) = GraphBatches.Spread(Mixed() with { Sampling = DeviceSamplingPlan.Of(inputs) }, 3, 999);
        var moved = spread.Sampling!.Inputs!;
        var bits = new int[9];
        moved.Masks!(bits);
        for (int r = 0; r < 6; r++)
            Assert.Equal(1 << r, bits[rowAt[r]]);
        foreach (int filler in Enumerable.Range(0, 9).Except(rowAt))
            Assert.Equal(-1, bits[filler]);
    }

    [Fact]
    public void APlanIsMadeOnceWhenFirstAskedAndMapsLazily()
    {
        int made = 0;
        var plan = new DeviceSamplingPlan(() => { made++; return DeviceSamplingInputs.TopK(2, 1); });
        var padded = plan.Map(s => s.Pad(8));
        Assert.Equal(0, made);                       // nothing is made before a device asks
        Assert.Equal(8, padded.Inputs!.Rows);
        Assert.Equal(2, plan.Inputs!.Rows);
        Assert.Equal(1, made);                       // the mapped plan asked the same one
        Assert.Null(DeviceSamplingPlan.Of(null).Map(s => s.Pad(8)).Inputs);   // whole rows stay whole rows
    }

    [Fact]
    public void VerificationStepsReplayAtTheStartUpQueryWhenTheFillIsCheap()
    {
        var decode = new ForwardBatch([7, 8], [5, 9], [5, 9], [[0], [1]], [0, 1, 2], [6, 10], [0, 1]);
        Assert.Equal(1, GraphBatches.GraphQuery(decode, 17, 5));                  // decode stays at 1
        Assert.Equal(5, GraphBatches.GraphQuery(Mixed(), 17, 5));                 // 3 sequences of up to 3 tokens: filled to 1 + k
        Assert.Equal(3, GraphBatches.GraphQuery(Mixed(), 17, 0));                 // not speculating: the longest query
        Assert.Equal(3, GraphBatches.GraphQuery(Mixed(), 17, 3));
        Assert.Equal(0, GraphBatches.GraphQuery(Mixed() with { LogitsIndices = [0, 3, 5] }, 17, 5));   // no graph's shape
        // 40 sequences, one of them verifying 4 drafts: 200 tokens for 44 is not worth it either way.
        int n = 40, tokens = n + 4;
        var start = Enumerable.Range(0, n + 1).Select(s => s == 0 ? 0 : s + 4).ToArray();
        var wide = new ForwardBatch(new int[tokens], new int[tokens], new int[tokens], Enumerable.Repeat(new[] { 0 }, n).ToArray(), start,
            Enumerable.Repeat(8, n).ToArray(), Enumerable.Range(0, tokens).ToArray());
        Assert.Equal(0, GraphBatches.GraphQuery(wide, 17, 5));
    }
}
