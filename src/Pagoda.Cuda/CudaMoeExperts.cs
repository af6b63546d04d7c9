using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// One layer's experts as moe.cu runs them: device arrays of each expert's gate, up and down weight addresses
/// (Linear rows, [out, in]) and optional bias addresses. Per-expert checkpoints are used where they were loaded;
/// gpt-oss's stacked [E, in, out] tensors are transposed once (gate and up de-interleaved) into tensors this owns.
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
            ex.Gate = ex.Own(b.Addresses(w.Gate.Select(CudaBackend.Address).ToArray()));
            ex.Up = ex.Own(b.Addresses(w.Up.Select(CudaBackend.Address).ToArray()));
            ex.Down = ex.Own(b.Addresses(w.Down.Select(CudaBackend.Address).ToArray()));
            return ex;
        }

        var gateUp = w.GateUp!;
        var downs = w.DownStacked ?? throw new ArgumentException("the stacked form needs DownStacked");
        if (!gateUp.Shape.SequenceEqual([numExperts, h, 2 * ff]) || !downs.Shape.SequenceEqual([numExperts, ff, h]))
            throw new ArgumentException($"stacked experts must be [{numExperts}, {h}, {2 * ff}] and [{numExperts}, {ff}, {h}]");
        var gu = ex.Own(b.TransposeExperts(gateUp, interleaved: true));    // [E, 2·ff, hidden]: gate rows, then up rows
        var dn = ex.Own(b.TransposeExperts(downs, interleaved: false));    // [E, hidden, ff]
        IEnumerable<ulong> Each(CudaTensor t, long stride, long offset = 0) =>
            Enumerable.Range(0, numExperts).Select(e => t.Ptr + (ulong)((e * stride + offset) * elem));
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
