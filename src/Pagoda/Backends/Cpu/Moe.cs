namespace Pagoda.Backends.Cpu;

/// <summary>
/// The CPU's fused MoE: routes on the host, sorts the batch's (token, rank) pairs by expert, runs each chosen
/// expert once over its gathered rows with the ordinary <see cref="Gemm"/> (experts no token chose are never
/// read), then sums every token's expert outputs with its routing weights in rank order. Each row of a Linear
/// is computed on its own, so with batch-invariant kernels a token's result is the same in any batch.
/// </summary>
internal sealed unsafe class Moe(Gemm gemm, StackedRowOps stackedRows, BufferCache buffers)
{
    // Per (token, rank) pair i = t·k + r: its expert, its weight, and its row in the expert-sorted scratch.
    private int[] _expert = [], _row = [], _pairOfRow = [];
    private float[] _weight = [];
    private int[] _count = [];
    private float[] _scores = [];

    public void Run(CpuTensor x, CpuTensor logits, CpuMoeExperts ex, MoeSpec spec, CpuTensor dst)
    {
        int n = x.Rows, h = ex.HiddenSize, ff = ex.IntermediateSize, numExperts = ex.NumExperts, k = spec.TopK;
        if (x.Cols != h || dst.Rows != n || dst.Cols != h || logits.Rows != n || logits.Cols != numExperts)
            throw new ArgumentException($"FusedMoe shapes: x [{n}, {x.Cols}], logits [{logits.Rows}, {logits.Cols}], dst [{dst.Rows}, {dst.Cols}] for {numExperts} experts of [{h} → {ff}]");
        if (k < 1 || k > numExperts)
            throw new ArgumentException($"top-k {k} with {numExperts} experts");
        int pairs = n * k;
        Grow(ref _expert, pairs);
        Grow(ref _row, pairs);
        Grow(ref _pairOfRow, pairs);
        Grow(ref _weight, pairs);
        Grow(ref _scores, numExperts);
        Grow(ref _count, numExperts + 1);
        for (int t = 0; t < n; t++)
            Route(logits.Row(t), spec, _expert.AsSpan(t * k, k), _weight.AsSpan(t * k, k));

        // Counting sort of the pairs by expert; within an expert, rows keep token order.
        Array.Clear(_count, 0, numExperts + 1);
        for (int i = 0; i < pairs; i++)
            _count[_expert[i] + 1]++;
        for (int e = 0; e < numExperts; e++)
            _count[e + 1] += _count[e];   // now _count[e] is expert e's first row
        for (int i = 0; i < pairs; i++)
        {
            int row = _count[_expert[i]]++;
            _row[i] = row;
            _pairOfRow[row] = i;
        }
        // _count[e] is now expert e's end row (its start is _count[e - 1], or 0).

        using var xs = CpuTensor.Allocate([pairs, h], zero: false, buffers);        // [pairs, hidden] gathered inputs
        using var gateUp = CpuTensor.Allocate([pairs, 2 * ff], zero: false, buffers); // [pairs, 2·ff] gate | up
        using var act = CpuTensor.Allocate([pairs, ff], zero: false, buffers);        // [pairs, ff]
        using var ys = CpuTensor.Allocate([pairs, h], zero: false, buffers);         // [pairs, hidden] expert outputs
        for (int row = 0; row < pairs; row++)
            x.Row(_pairOfRow[row] / k).CopyTo(xs.Row(row));
        for (int e = 0, start = 0; e < numExperts; start = _count[e], e++)
        {
            int m = _count[e] - start;
            if (m == 0)
                continue;
            using var xe = View(xs, start, m);
            using var gue = View(gateUp, start, m);
            using var acte = View(act, start, m);
            using var ye = View(ys, start, m);
            gemm.Linear(xe, ex.GateUp[e], ex.GateUpBias[e], gue);
            if (spec.Activation == MoeActivation.SiluGated)
                stackedRows.SiluMul(gue, acte);
            else
                ClampedSwiglu(gue, acte, spec.SwigluAlpha, spec.SwigluLimit);
            gemm.Linear(acte, ex.Down[e], ex.DownBias[e], ye);
        }
        Combine(ys, n, k, h, dst);
    }

    // Rows [start, start + m) of a scratch tensor, as a tensor of its own.
    private static CpuTensor View(CpuTensor t, int start, int m) =>
        CpuTensor.Borrow(DType.F32, [m, t.Cols], t.Pointer + (long)start * t.Cols * sizeof(float));

    // A token's experts (by descending score, ties to the lower index) and weights, as transformers computes them.
    private void Route(Span<float> logits, MoeSpec spec, Span<int> experts, Span<float> weights)
    {
        int numExperts = logits.Length, k = experts.Length;
        var scores = _scores.AsSpan(0, numExperts);
        logits.CopyTo(scores);
        if (spec.Scoring == MoeScoring.SoftmaxTopK)
            Softmax(scores);
        for (int r = 0; r < k; r++)
        {
            int best = -1;
            for (int e = 0; e < numExperts; e++)
            {
                if (experts[..r].Contains(e))
                    continue;
                if (best < 0 || scores[e] > scores[best])
                    best = e;
            }
            experts[r] = best;
            weights[r] = scores[best];
        }
        if (spec.Scoring == MoeScoring.TopKSoftmax)
            Softmax(weights);
        if (spec.Renormalize)
        {
            float sum = 0;
            foreach (float w in weights)
                sum += w;
            for (int r = 0; r < k; r++)
                weights[r] /= sum;
        }
    }

    private static void Softmax(Span<float> v)
    {
        float max = float.NegativeInfinity;
        foreach (float s in v)
            max = MathF.Max(max, s);
        float sum = 0;
        for (int i = 0; i < v.Length; i++)
            sum += v[i] = MathF.Exp(v[i] - max);
        for (int i = 0; i < v.Length; i++)
            v[i] /= sum;
    }

    // gpt-oss: g = min(gate, limit), u = clamp(up, ±limit), act = (u + 1) · g · sigmoid(alpha · g), each row on its own.
    private static void ClampedSwiglu(CpuTensor gateUp, CpuTensor act, float alpha, float limit)
    {
        int ff = act.Cols;
        for (int r = 0; r < act.Rows; r++)
        {
            var src = gateUp.Row(r);
            var d = act.Row(r);
            for (int j = 0; j < ff; j++)
            {
                float g = MathF.Min(src[j], limit), u = Math.Clamp(src[ff + j], -limit, limit);
                float glu = g * (1f / (1f + MathF.Exp(-(g * alpha))));
                d[j] = (u + 1f) * glu;
            }
        }
    }

    // dst[t] = Σ_r weight[t, r] · y[t, r], summed from rank 0 up: each product rounded, then added, as
    // transformers' "out * weight" then index_add_ does (for top-2 its expert order gives the same bits).
    private void Combine(CpuTensor ys, int n, int k, int h, CpuTensor dst)
    {
        for (int t = 0; t < n; t++)
        {
            var d = dst.Row(t);
            for (int r = 0; r < k; r++)
            {
                int pair = t * k + r;
                float w = _weight[pair];
                var y = ys.Row(_row[pair]);
                if (r == 0)
                {
                    for (int i = 0; i < h; i++)
                        d[i] = w * y[i];
                }
                else
                {
                    for (int i = 0; i < h; i++)
                        d[i] += w * y[i];
                }
            }
        }
    }

    private static void Grow<T>(ref T[] array, int length)
    {
        if (array.Length < length)
            array = new T[Math.Max(length, 2 * array.Length)];
    }
}
