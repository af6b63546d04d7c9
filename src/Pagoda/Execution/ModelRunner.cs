using Pagoda.Backends;
using Pagoda.Models;

namespace Pagoda.Execution;

/// <summary>One sequence's share of a step: compute <see cref="NumTokens"/> tokens after the cached ones.</summary>
public sealed record ScheduledSequence(
    IReadOnlyList<int> TokenIds,   // the sequence's tokens so far (prompt + output)
    int NumComputedTokens,         // tokens already in the KV cache
    int NumTokens,                 // tokens to compute this step
    IReadOnlyList<int> BlockIds,   // the sequence's KV blocks, covering NumComputedTokens + NumTokens
    bool AllLogits);               // logits for every computed token (prompt logprobs), not just the last

/// <summary>
/// Turns scheduled sequences into one <see cref="ForwardBatch"/>, runs the model over the KV pool and
/// hands back each sequence's logits.
/// </summary>
public sealed class ModelRunner(IModel model, KvCache cache)
{
    /// <summary>The KV pool.</summary>
    public KvCache Cache { get; } = cache;

    /// <summary>Builds the flattened batch for <paramref name="seqs"/>.</summary>
    public ForwardBatch BuildBatch(IReadOnlyList<ScheduledSequence> seqs)
    {
        int total = seqs.Sum(s => s.NumTokens);
        int bs = Cache.BlockSize;
        var ids = new int[total];
        var positions = new int[total];
        var slots = new int[total];
        var blockTables = new int[seqs.Count][];
        var queryStart = new int[seqs.Count + 1];
        var seqLens = new int[seqs.Count];
        var logitRows = new List<int>();
        int t = 0;
        for (int s = 0; s < seqs.Count; s++)
        {
            var seq = seqs[s];
            queryStart[s] = t;
            seqLens[s] = seq.NumComputedTokens + seq.NumTokens;
            blockTables[s] = seq.BlockIds.ToArray();
            if (blockTables[s].Length * bs < seqLens[s])
                throw new InvalidOperationException($"sequence {s} has {blockTables[s].Length} blocks for {seqLens[s]} tokens");
            for (int i = 0; i < seq.NumTokens; i++, t++)
            {
                int pos = seq.NumComputedTokens + i;
                ids[t] = seq.TokenIds[pos];
                positions[t] = pos;
                slots[t] = blockTables[s][pos / bs] * bs + pos % bs;
                if (seq.AllLogits || i == seq.NumTokens - 1)
                    logitRows.Add(t);
            }
        }
        queryStart[seqs.Count] = t;
        return new ForwardBatch(ids, positions, slots, blockTables, queryStart, seqLens, logitRows.ToArray());
    }

    /// <summary>
    /// Runs one step and returns, per sequence, its logits rows: [rows, vocab] where rows is NumTokens
    /// when AllLogits is set, else 1.
    /// </summary>
    public IReadOnlyList<float[][]> Execute(IReadOnlyList<ScheduledSequence> seqs)
    {
        var batch = BuildBatch(seqs);
        float[] logits = model.Forward(batch, Cache);
        int vocab = model.Config.VocabSize;
        var result = new List<float[][]>(seqs.Count);
        int row = 0;
        foreach (var seq in seqs)
        {
            int rows = seq.AllLogits ? seq.NumTokens : 1;
            var perSeq = new float[rows][];
            for (int r = 0; r < rows; r++, row++)
                perSeq[r] = logits.AsSpan(row * vocab, vocab).ToArray();
            result.Add(perSeq);
        }
        return result;
    }
}
