using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// One layer's experts as moe.cu runs them: device arrays of each expert's gate, up and down weight addresses
/// (Linear rows, [out, in]) and optional bias addresses, into one stack per layer this owns: per-expert checkpoints'
/// tensors are stacked (gate, up of expert 0, then of expert 1, ...), gpt-oss's stacked [E, in, out] tensors transposed
/// once (gate and up de-interleaved).
/// </summary>
internal sealed class CudaMoeExperts : MoeExperts
{
    private readonly List<IDisposable> _owned = [];

    private CudaMoeExperts(int numExperts, int hidden, int intermediate) : base(numExperts, hidden, intermediate) { }

    /// <summary>Device array [E] of gate weights [intermediate, hidden].</summary>
    public ulong Gate { get; private set; }

    /// <summary>Device array [E] of up weights [intermediate, hidden].</summary>
    public ulong Up { get; private set; }

    /// <summary>Device array [E] of down weights [hidden, intermediate].</summary>
    public ulong Down { get; private set; }

    /// <summary>Device array [E] of gate | up biases [2·intermediate], or 0.</summary>
    public ulong GateUpBias { get; private set; }

    /// <summary>Device array [E] of down biases [hidden], or 0.</summary>
    public ulong DownBias { get; private set; }

    public static CudaMoeExperts Prepare(CudaBackend b, MoeExpertWeights w)
    {
        int numExperts = w.NumExperts, h = w.HiddenSize, ff = w.IntermediateSize;
        var ex = new CudaMoeExperts(numExperts, h, ff);
        long elem = b.ElementSize;
        // Expert e's address in a [E, ...] stack: stride elements per expert, offset into its part.
        IEnumerable<ulong> Each(CudaTensor t, long stride, long offset = 0) =>
            Enumerable.Range(0, numExperts).Select(e => t.Ptr + (ulong)((e * stride + offset) * elem));
        if (!w.IsStacked)
        {
            if (w.Gate?.Length != numExperts || w.Up?.Length != numExperts || w.Down?.Length != numExperts)
                throw new ArgumentException($"per-expert weights need {numExperts} gate, up and down tensors");
            for (int e = 0; e < numExperts; e++)
            {
                if (w.Gate[e].Rows != ff || w.Gate[e].Cols != h || w.Up[e].Rows != ff || w.Up[e].Cols != h || w.Down[e].Rows != h || w.Down[e].Cols != ff)
                    throw new ArgumentException($"expert {e}: gate/up must be [{ff}, {h}] and down [{h}, {ff}]");
            }
            if (w.GateUpBias != null || w.DownBias != null)
                throw new ArgumentException("biases are only taken with the stacked form");
            // One allocation per layer instead of 3·E: each cuMemAlloc rounds up to its 2 MB granularity, which cost
            // Qwen3-30B-A3B's 18,432 expert tensors of 3 MB about a quarter of their size (its KV cache got 0 blocks
            // on an 80 GB card). StackRows releases the per-expert tensors.
            // The stacks belong to the backend, as its other weights do.
            var stackedGateUp = (CudaTensor)b.StackRows(Enumerable.Range(0, numExperts).SelectMany(e => new[] { w.Gate[e], w.Up[e] }).ToArray());
            var stackedDown = (CudaTensor)b.StackRows(w.Down);
            ex.Gate = ex.Own(b.Addresses(Each(stackedGateUp, 2L * ff * h).ToArray()));
            ex.Up = ex.Own(b.Addresses(Each(stackedGateUp, 2L * ff * h, (long)ff * h).ToArray()));
            ex.Down = ex.Own(b.Addresses(Each(stackedDown, (long)h * ff).ToArray()));
            return ex;
        }

        var gateUp = w.GateUp!;
        var downs = w.DownStacked ?? throw new ArgumentException("the stacked form needs DownStacked");
        if (!gateUp.Shape.SequenceEqual([numExperts, h, 2 * ff]) || !downs.Shape.SequenceEqual([numExperts, ff, h]))
            throw new ArgumentException($"stacked experts must be [{numExperts}, {h}, {2 * ff}] and [{numExperts}, {ff}, {h}]");
        var gu = ex.Own(b.TransposeExperts(gateUp, interleaved: true));    // [E, 2·ff, hidden]: gate rows, then up rows
        var dn = ex.Own(b.TransposeExperts(downs, interleaved: false));    // [E, hidden, ff]
        ex.Gate = ex.Own(b.Addresses(Each(gu, 2L * ff * h).ToArray()));
        ex.Up = ex.Own(b.Addresses(Each(gu, 2L * ff * h, (long)ff * h).ToArray()));
        ex.Down = ex.Own(b.Addresses(Each(dn, (long)h * ff).ToArray()));
        if (w.GateUpBias != null)
        {
            if (!w.GateUpBias.Shape.SequenceEqual([numExperts, 2 * ff]))
                throw new ArgumentException($"the gate/up bias must be [{numExperts}, {2 * ff}]");
            var bias = ex.Own(b.TransposeExperts(w.GateUpBias, interleaved: true));   // [E, 2·ff]: gate, then up
            ex.GateUpBias = ex.Own(b.Addresses(Each(bias, 2L * ff).ToArray()));
        }
        if (w.DownBias != null)
        {
            if (!w.DownBias.Shape.SequenceEqual([numExperts, h]))
                throw new ArgumentException($"the down bias must be [{numExperts}, {h}]");
            ex.DownBias = ex.Own(b.Addresses(Each((CudaTensor)w.DownBias, h).ToArray()));
        }
        return ex;
    }

    private T Own<T>(T d) where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    private ulong Own(DeviceMemory m)
    {
        _owned.Add(m);
        return m.Ptr;
    }

    public override void Dispose()
    {
        foreach (var d in _owned)
            d.Dispose();
        _owned.Clear();
        base.Dispose();
    }
}
