using Pagoda.Backends;
using Pagoda.Distributed;

namespace Pagoda.Models;

/// <summary>
/// Projects only the rows whose logits are wanted onto the vocabulary and copies them to the host, into
/// arrays this head keeps and reuses: a fresh [rows, vocab] array every step is a large-object
/// allocation whose first writes fault its pages in (0.2-0.4 ms a decode step of a 152K vocabulary,
/// measured), while a reused one copies in ~15 µs. So an output is valid until the model's next forward.
/// With a <c>softCap</c> (Gemma 2's final logit soft-capping) each logit l becomes cap · tanh(l / cap) on the
/// backend, before the device sampler or the copy to the host reads it. With a communicator of several ranks the
/// weight is this rank's rows of the vocabulary and rank 0 gathers every rank's logits into whole rows on its backend,
/// which it then samples or copies as one rank would.
/// </summary>
internal sealed class LmHead(IBackend b, Tensor weight, float softCap = 0, ICommunicator? comm = null, int vocabSize = 0)
{
    // The last few output lengths seen (batches of different sizes alternate under continuous batching),
    // at most 64 MB in all: a long prompt's rows for prompt logprobs are not kept alive between requests.
    private const int KeptArrays = 4;
    private const long KeptBytes = 64L << 20;
    private readonly List<float[]> _outputs = [];

    /// <summary>The model's output for the batch: logits, or the hidden rows themselves when pooling.</summary>
    public float[] Project(Tensor hidden, ForwardBatch batch) =>
        batch.LogitsIndices.Length == 0 ? []   // a forward for its KV alone (a draft model mirroring the target's step)
        : batch.ReturnHiddenStates ? Rows(hidden, batch.LogitsIndices) : Logits(hidden, batch.LogitsIndices, batch.Sampling);

    private float[] Logits(Tensor hidden, int[] rows, DeviceSamplingPlan? sampling)
    {
        using var selected = b.Empty(rows.Length, hidden.Cols);   // [numOutputs, hidden]
        b.GatherRows(hidden, rows, selected);
        var sampler = sampling != null ? b as IDeviceSampler : null;
        using var part = (comm == null ? sampler?.ForwardLogits(rows.Length, weight.Rows) : null)
            ?? b.Empty(rows.Length, weight.Rows);   // [numOutputs, vocab] (this rank's ids of it)
        b.Linear(selected, weight, null, part);
        if (softCap != 0)
            b.SoftCap(part, softCap);
        if (comm == null)
            return FromWholeRows(part, sampler, sampling);
        if (comm.Rank.Rank != 0)
        {
            comm.GatherColumns(part, null);   // rank 0 samples
            sampler?.EndForwardWithoutOutput();
            return [];
        }
        using var whole = sampler?.ForwardLogits(rows.Length, vocabSize) ?? b.Empty(rows.Length, vocabSize);   // [numOutputs, vocab]
        comm.GatherColumns(part, whole);
        return FromWholeRows(whole, sampler, sampling);
    }

    // The forward's output from whole rows of logits: the device's reduction of them, or the rows themselves.
    private float[] FromWholeRows(Tensor logits, IDeviceSampler? sampler, DeviceSamplingPlan? sampling)
    {
        if (sampler != null)   // whole rows go to this head's reused arrays, reduced ones (a few floats a row) are fresh
            return sampler.SampleForward(logits, sampling!, n => n == logits.NumElements ? Output(n) : new float[n]);
        var host = Output(checked((int)logits.NumElements));
        b.CopyToHost(logits, host);
        return host;
    }

    private float[] Rows(Tensor hidden, int[] rows)
    {
        using var selected = b.Empty(rows.Length, hidden.Cols);   // [numOutputs, hidden]
        b.GatherRows(hidden, rows, selected);
        var host = new float[selected.NumElements];
        b.CopyToHost(selected, host);
        return host;
    }

    private float[] Output(int length)
    {
        int i = _outputs.FindIndex(a => a.Length == length);
        var array = i >= 0 ? _outputs[i] : new float[length];
        if (i >= 0)
            _outputs.RemoveAt(i);
        if ((long)length * sizeof(float) > KeptBytes)
            return array;
        _outputs.Add(array);   // most recently used last
        while (_outputs.Count > KeptArrays || _outputs.Sum(a => (long)a.Length * sizeof(float)) > KeptBytes)
            _outputs.RemoveAt(0);
        return array;
    }
}
