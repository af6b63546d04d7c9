using Pagoda.Backends;

namespace Pagoda.Models;

/// <summary>Projects only the rows whose logits are wanted onto the vocabulary and copies them to the host.</summary>
internal static class LmHead
{
    public static float[] Logits(IBackend b, Tensor hidden, Tensor lmHead, int[] rows)
    {
        using var selected = b.Empty(rows.Length, hidden.Cols);   // [numOutputs, hidden]
        b.GatherRows(hidden, rows, selected);
        using var logits = b.Empty(rows.Length, lmHead.Rows);     // [numOutputs, vocab]
        b.Linear(selected, lmHead, null, logits);
        var host = new float[logits.NumElements];
        b.CopyToHost(logits, host);
        return host;
    }
}
