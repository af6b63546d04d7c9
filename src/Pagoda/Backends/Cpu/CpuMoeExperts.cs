namespace Pagoda.Backends.Cpu;

/// <summary>
/// One layer's experts as the CPU runs them: per expert a gate | up weight [2·intermediate, hidden] (gate rows,
/// then up rows) and a down weight [hidden, intermediate], both [out, in] so the ordinary <see cref="Gemm"/> runs
/// them, with optional float32 biases. Per-expert checkpoints are used in place (gate | up is a
/// <see cref="CpuTensor.StackView"/> of the two mapped tensors); gpt-oss's stacked [in, out] tensors are
/// transposed once, in their stored dtype, with the interleaved gate/up columns split into the two halves.
/// </summary>
internal sealed unsafe class CpuMoeExperts : MoeExperts
{
    private readonly List<CpuTensor> _owned = [];

    private CpuMoeExperts(int numExperts, int hidden, int intermediate) : base(numExperts, hidden, intermediate)
    {
        GateUp = new CpuTensor[numExperts];
        GateUpBias = new CpuTensor?[numExperts];
        Down = new CpuTensor[numExperts];
        DownBias = new CpuTensor?[numExperts];
    }

    /// <summary>[E] of [2·intermediate, hidden]: gate rows, then up rows.</summary>
    public CpuTensor[] GateUp { get; }

    /// <summary>[E] of float32 [2·intermediate] (gate, then up), or nulls.</summary>
    public CpuTensor?[] GateUpBias { get; }

    /// <summary>[E] of [hidden, intermediate].</summary>
    public CpuTensor[] Down { get; }

    /// <summary>[E] of float32 [hidden], or nulls.</summary>
    public CpuTensor?[] DownBias { get; }

    public static CpuMoeExperts Prepare(MoeExpertWeights w)
    {
        int numExperts = w.NumExperts, h = w.HiddenSize, ff = w.IntermediateSize;
        var ex = new CpuMoeExperts(numExperts, h, ff);
        if (!w.IsStacked)
        {
            if (w.Gate?.Length != numExperts || w.Up?.Length != numExperts || w.Down?.Length != numExperts)
                throw new ArgumentException($"per-expert weights need {numExperts} gate, up and down tensors");
            for (int e = 0; e < numExperts; e++)
            {
                var (gate, up, down) = ((CpuTensor)w.Gate[e], (CpuTensor)w.Up[e], (CpuTensor)w.Down[e]);
                if (gate.Rows != ff || gate.Cols != h || up.Rows != ff || up.Cols != h || down.Rows != h || down.Cols != ff)
                    throw new ArgumentException($"expert {e}: gate/up must be [{ff}, {h}] and down [{h}, {ff}]");
                ex.GateUp[e] = CpuTensor.StackView([gate, up]);
                ex.Down[e] = down;
            }
            if (w.GateUpBias != null || w.DownBias != null)
                throw new ArgumentException("biases are only taken with the stacked form");
            return ex;
        }

        var gateUp = (CpuTensor)w.GateUp!;
        var downs = (CpuTensor?)w.DownStacked ?? throw new ArgumentException("the stacked form needs DownStacked");
        if (!gateUp.Shape.SequenceEqual([numExperts, h, 2 * ff]) || !downs.Shape.SequenceEqual([numExperts, ff, h]) || gateUp.DType != downs.DType)
            throw new ArgumentException($"stacked experts must be [{numExperts}, {h}, {2 * ff}] and [{numExperts}, {ff}, {h}] of one dtype");
        // Row r of the transposed gate | up takes stored column 2r (gate r) for r < ff, else 2(r - ff) + 1 (up r - ff).
        var gateUpColumn = Enumerable.Range(0, 2 * ff).Select(r => r < ff ? 2 * r : 2 * (r - ff) + 1).ToArray();
        var downColumn = Enumerable.Range(0, h).ToArray();
        float[]? gateUpBias = w.GateUpBias == null ? null : ((CpuTensor)w.GateUpBias).AsFloatVector();
        float[]? downBias = w.DownBias == null ? null : ((CpuTensor)w.DownBias).AsFloatVector();
        if (gateUpBias != null && gateUpBias.Length != numExperts * 2 * ff || downBias != null && downBias.Length != numExperts * h)
            throw new ArgumentException($"stacked biases must be [{numExperts}, {2 * ff}] and [{numExperts}, {h}]");
        long elem = DTypes.SizeOf(gateUp.DType);
        for (int e = 0; e < numExperts; e++)
        {
            ex.GateUp[e] = ex.Own(Transposed(gateUp.Pointer + e * (long)h * 2 * ff * elem, 2 * ff, gateUpColumn, h, gateUp.DType));
            ex.Down[e] = ex.Own(Transposed(downs.Pointer + e * (long)ff * h * elem, h, downColumn, ff, downs.DType));
            if (gateUpBias != null)
                ex.GateUpBias[e] = ex.Own(Vector(gateUpColumn.Select(c => gateUpBias[e * 2 * ff + c])));
            if (downBias != null)
                ex.DownBias[e] = ex.Own(Vector(downBias.Skip(e * h).Take(h)));
        }
        return ex;
    }

    // dst [rows, cols] with dst[r, i] = src[i, column[r]], src being [cols, srcCols] of one stored dtype.
    private static CpuTensor Transposed(byte* src, int srcCols, int[] column, int cols, DType dtype)
    {
        var dst = CpuTensor.AllocateStored(dtype, [column.Length, cols]);
        for (int r = 0; r < column.Length; r++)
        {
            for (int i = 0; i < cols; i++)
            {
                long from = (long)i * srcCols + column[r], to = (long)r * cols + i;
                if (DTypes.SizeOf(dtype) == 4)
                    ((uint*)dst.Pointer)[to] = ((uint*)src)[from];
                else
                    ((ushort*)dst.Pointer)[to] = ((ushort*)src)[from];
            }
        }
        return dst;
    }

    private static CpuTensor Vector(IEnumerable<float> values)
    {
        var v = values.ToArray();
        var t = CpuTensor.Allocate([v.Length], zero: false);
        v.CopyTo(t.F32);
        return t;
    }

    private CpuTensor Own(CpuTensor t)
    {
        _owned.Add(t);
        return t;
    }

    public override void Dispose()
    {
        foreach (var t in _owned)
            t.Dispose();
        _owned.Clear();
        base.Dispose();
    }
}
