using Pagoda.Backends;
using Pagoda.Execution;

namespace Pagoda.Models;

/// <summary>Projects only the rows whose logits are wanted onto the vocabulary and copies them to the host.</summary>
internal static class LmHead
{
    /// <summary>The model's output for the batch: logits, or the hidden rows themselves when pooling.</summary>
    public static float[] Project(IBackend b, Tensor hidden, Tensor lmHead, ForwardBatch batch) =>
        batch.ReturnHiddenStates ? Rows(b, hidden, batch.LogitsIndices) : Logits(b, hidden, lmHead, batch.LogitsIndices, batch.LogitsTopK);

    public static float[] Logits(IBackend b, Tensor hidden, Tensor lmHead, int[] rows, int topK = 0)
    {
        using var selected = b.Empty(rows.Length, hidden.Cols);   // [numOutputs, hidden]
        b.GatherRows(hidden, rows, selected);
        using var logits = b.Empty(rows.Length, lmHead.Rows);     // [numOutputs, vocab]
        b.Linear(selected, lmHead, null, logits);
        if (topK > 0 && b is ILogitsTopK reducer && topK <= reducer.MaxLogitsTopK)
        {
            var candidates = new float[rows.Length * 2 * topK];
            reducer.CopyTopKToHost(logits, topK, candidates);
            return candidates;
        }
        var host = new float[logits.NumElements];
        b.CopyToHost(logits, host);
        return host;
    }

    private static float[] Rows(IBackend b, Tensor hidden, int[] rows)
    {
        using var selected = b.Empty(rows.Length, hidden.Cols);   // [numOutputs, hidden]
        b.GatherRows(hidden, rows, selected);
        var host = new float[selected.NumElements];
        b.CopyToHost(selected, host);
        return host;
    }
}
