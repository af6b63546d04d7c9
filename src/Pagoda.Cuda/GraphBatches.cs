using Pagoda.Backends;

namespace Pagoda.Cuda;

/// <summary>
/// The batch shapes CUDA graphs replay, made from the engine's batches: every sequence with the same number of query
/// tokens q, every token's row sampled (decode: q = 1; speculative decoding: a token and q - 1 drafts to verify), padded
/// with sequences at the pool's scratch block up to a captured size.
/// </summary>
internal static class GraphBatches
{
    /// <summary>
    /// The most query tokens of any sequence when every sequence has 1 to <paramref name="maxQuery"/> tokens and every
    /// token's row is sampled (logits, not pooled hidden states); else 0.
    /// </summary>
    public static int MaxQuery(ForwardBatch b, int maxQuery)
    {
        int n = b.NumSeqs, most = 0;
        if (n == 0 || b.LogitsIndices.Length != b.NumTokens || b.ReturnHiddenStates)
            return 0;
        for (int t = 0; t < b.NumTokens; t++)
        {
            if (b.LogitsIndices[t] != t)
                return 0;
        }
        for (int s = 0; s < n; s++)
        {
            int q = b.QueryStartLoc[s + 1] - b.QueryStartLoc[s];
            if (q < 1 || q > maxQuery)
                return 0;
            most = Math.Max(most, q);
        }
        return most;
    }

    /// <summary>
    /// The query length a batch replays at, or 0 for none (it runs eagerly): decode's 1; a verification step's
    /// <paramref name="verifyQuery"/> (the start-up graphs' 1 + k) when filling every query up to it is cheap enough,
    /// else its longest query when filling up to that is; 0 when neither is, or the batch is no graph's shape.
    /// </summary>
    public static int GraphQuery(ForwardBatch b, int maxQuery, int verifyQuery)
    {
        int n = b.NumSeqs, q = MaxQuery(b, maxQuery);
        if (q > 1 && q < verifyQuery && verifyQuery <= maxQuery && WorthSpreading(b.NumTokens, n, verifyQuery))
            return verifyQuery;
        return q > 0 && (b.NumTokens == n * q || WorthSpreading(b.NumTokens, n, q)) ? q : 0;
    }

    /// <summary>
    /// Whether filling <paramref name="rows"/> tokens of <paramref name="numSeqs"/> sequences up to <paramref name="q"/>
    /// each is cheaper than running them eagerly: when the fill at most doubles the tokens, or the step stays within
    /// <see cref="SmallStep"/> tokens, where a step's cost is reading the weights, not the tokens. A decode batch of 256 with
    /// one request verifying 4 drafts would otherwise compute 1,280 tokens for 260.
    /// </summary>
    public static bool WorthSpreading(int rows, int numSeqs, int q) => (long)numSeqs * q <= Math.Max(2L * rows, SmallStep);

    /// <summary>Tokens a step may have and still cost about what reading the weights does.</summary>
    public const int SmallStep = 128;

    /// <summary>
    /// Each sequence's query filled up to <paramref name="q"/> tokens: a filler token repeats its sequence's last position
    /// (so it reads only keys the sequence holds), writes the scratch slot, and gets a plain sampling row. Returns the
    /// spread batch and, for each of <paramref name="b"/>'s rows, its row in it.
    /// </summary>
    public static (ForwardBatch Batch, int[] RowAt) Spread(ForwardBatch b, int q, int scratchSlot)
    {
        int n = b.NumSeqs, tokens = n * q;
        var ids = new int[tokens];
        var positions = new int[tokens];
        var slots = new int[tokens];
        var start = new int[n + 1];
        var rowAt = new int[b.NumTokens];
        for (int s = 0; s < n; s++)
        {
            int from = b.QueryStartLoc[s], count = b.QueryStartLoc[s + 1] - from, at = s * q;
            start[s] = at;
            b.InputIds.AsSpan(from, count).CopyTo(ids.AsSpan(at));
            b.Positions.AsSpan(from, count).CopyTo(positions.AsSpan(at));
            b.SlotMapping.AsSpan(from, count).CopyTo(slots.AsSpan(at));
            positions.AsSpan(at + count, q - count).Fill(b.Positions[from + count - 1]);
            slots.AsSpan(at + count, q - count).Fill(scratchSlot);
            for (int j = 0; j < count; j++)
                rowAt[from + j] = at + j;
        }
        start[n] = tokens;
        var spread = new ForwardBatch(ids, positions, slots, b.BlockTables, start, b.SeqLens, Enumerable.Range(0, tokens).ToArray())
        {
            Sampling = b.Sampling?.Map(s => s.Spread(tokens, rowAt)),
        };
        return (spread, rowAt);
    }

    /// <summary>
    /// <paramref name="b"/> (q tokens a sequence) followed by sequences of q tokens at position 0 that read and write only the
    /// scratch block, up to <paramref name="size"/> sequences.
    /// </summary>
    public static ForwardBatch Pad(ForwardBatch b, int size, int q, int scratchSlot, int[] scratchTable)
    {
        int n = b.NumSeqs, real = n * q;
        var ids = new int[size * q];
        var positions = new int[size * q];
        var slots = new int[size * q];
        var tables = new int[size][];
        var start = new int[size + 1];
        var lens = new int[size];
        b.InputIds.AsSpan(0, real).CopyTo(ids);
        b.Positions.AsSpan(0, real).CopyTo(positions);
        b.SlotMapping.AsSpan(0, real).CopyTo(slots);
        slots.AsSpan(real).Fill(scratchSlot);
        b.BlockTables.AsSpan(0, n).CopyTo(tables);
        tables.AsSpan(n).Fill(scratchTable);
        b.SeqLens.AsSpan(0, n).CopyTo(lens);
        lens.AsSpan(n).Fill(1);
        for (int i = 0; i <= size; i++)
            start[i] = i * q;
        return new ForwardBatch(ids, positions, slots, tables, start, lens, Enumerable.Range(0, size * q).ToArray())
        {
            Sampling = b.Sampling?.Map(s => s.Pad(size * q)),
        };
    }
}
