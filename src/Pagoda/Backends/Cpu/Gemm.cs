namespace Pagoda.Backends.Cpu;

/// <summary>
/// dst = x · Wᵀ + b with W stored [out, in] in F32/BF16/F16. Work is split over output columns; each
/// weight row is widened once and dotted with every input row, so prefill reads the weights once.
/// </summary>
internal static class Gemm
{
    private const int ColumnsPerTask = 64;

    public static void Linear(CpuTensor x, CpuTensor w, CpuTensor? bias, CpuTensor dst)
    {
        int n = x.Rows, inDim = x.Cols, outDim = w.Rows;
        if (w.Cols != inDim || dst.Rows != n || dst.Cols != outDim || (bias != null && bias.NumElements != outDim))
            throw new ArgumentException($"Linear shapes: x [{n}, {inDim}], w [{outDim}, {w.Cols}], dst [{dst.Rows}, {dst.Cols}]");

        int chunks = (outDim + ColumnsPerTask - 1) / ColumnsPerTask;
        Parallel.For(0, chunks, () => new float[inDim], (chunk, _, wRow) =>
        {
            int end = Math.Min(outDim, (chunk + 1) * ColumnsPerTask);
            for (int j = chunk * ColumnsPerTask; j < end; j++)
            {
                Vec.ReadRow(w, j, wRow);
                float b = bias == null ? 0f : ReadScalar(bias, j);
                for (int r = 0; r < n; r++)
                    dst.Row(r)[j] = Vec.Dot(x.Row(r), wRow) + b;
            }
            return wRow;
        }, _ => { });
    }

    /// <summary>One element of a (bias or norm) weight vector as float32.</summary>
    public static unsafe float ReadScalar(CpuTensor t, int i) => t.DType switch
    {
        DType.F32 => ((float*)t.Pointer)[i],
        DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)t.Pointer)[i] << 16),
        _ => (float)((Half*)t.Pointer)[i],
    };

    /// <summary>A whole weight vector as float32.</summary>
    public static float[] ReadVector(CpuTensor t)
    {
        var v = new float[t.NumElements];
        for (int i = 0; i < v.Length; i++)
            v[i] = ReadScalar(t, i);
        return v;
    }
}
