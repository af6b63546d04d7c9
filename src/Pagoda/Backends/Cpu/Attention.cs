using Pagoda.Execution;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Causal attention over the paged KV pool: each query token of a sequence attends to every cached
/// position up to its own, reading keys and values through the sequence's block table.
/// </summary>
internal static class Attention
{
    public static void Paged(CpuTensor q, PagedKvCache cache, int layer, ForwardBatch batch, int numHeads, int numKvHeads,
        int headDim, float scale, CpuTensor dst)
    {
        var keys = (CpuTensor)cache.Keys[layer];
        var values = (CpuTensor)cache.Values[layer];
        int groupSize = numHeads / numKvHeads;
        int blockSize = cache.BlockSize;

        // One work item per (token, head): enough parallelism for prefill, and for decode across heads.
        int items = batch.NumTokens * numHeads;
        Parallel.For(0, items, () => new float[batch.SeqLens.Max()], (item, _, scores) =>
        {
            int token = item / numHeads, head = item % numHeads;
            int seq = SequenceOf(batch.QueryStartLoc, token);
            int position = batch.Positions[token];
            int[] blockTable = batch.BlockTables[seq];
            int kvOffset = head / groupSize * headDim;

            ReadOnlySpan<float> query = q.Row(token).Slice(head * headDim, headDim);
            float max = float.NegativeInfinity;
            for (int p = 0; p <= position; p++)
            {
                int slot = blockTable[p / blockSize] * blockSize + p % blockSize;
                float s = Vec.Dot(query, keys.Row(slot).Slice(kvOffset, headDim)) * scale;
                scores[p] = s;
                max = MathF.Max(max, s);
            }
            float sum = 0;
            for (int p = 0; p <= position; p++)
            {
                scores[p] = MathF.Exp(scores[p] - max);
                sum += scores[p];
            }
            Span<float> output = dst.Row(token).Slice(head * headDim, headDim);
            output.Clear();
            float inv = 1f / sum;
            for (int p = 0; p <= position; p++)
            {
                int slot = blockTable[p / blockSize] * blockSize + p % blockSize;
                Vec.AddScaled(values.Row(slot).Slice(kvOffset, headDim), scores[p] * inv, output);
            }
            return scores;
        }, _ => { });
    }

    private static int SequenceOf(int[] queryStartLoc, int token)
    {
        int seq = Array.BinarySearch(queryStartLoc, token);
        if (seq < 0)
            return ~seq - 1;
        // Skip sequences that schedule no tokens (equal consecutive start locations).
        while (seq + 1 < queryStartLoc.Length && queryStartLoc[seq + 1] == token)
            seq++;
        return seq;
    }
}
