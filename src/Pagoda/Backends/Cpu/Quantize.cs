namespace Pagoda.Backends.Cpu;

/// <summary>
/// Weight-only int8 made at load time: per output channel (row) symmetric, scale = max|w| / 127 and
/// q = round(w / scale), so a row's largest weight is exact and the rest err by at most scale / 2.
/// Rows are written in the <see cref="RowQuads"/> layout where the shape allows.
/// </summary>
internal sealed unsafe class Quantize : PoolJob
{
    private const int RowsPerChunk = 64;
    private readonly CpuTensor _src, _dst;

    private Quantize(CpuTensor src, CpuTensor dst) => (_src, _dst) = (src, dst);

    public static CpuTensor Int8(CpuTensor weight, WorkerPool pool)
    {
        if (weight.DType == DType.I8)
            return weight;
        var q = CpuTensor.AllocateInt8(weight.Shape);
        pool.Run(new Quantize(weight, q), (weight.Rows + RowsPerChunk - 1) / RowsPerChunk);
        return q;
    }

    public override void Execute(int chunk, int worker)
    {
        int cols = _src.Cols;
        var row = new float[cols];
        var quantized = new sbyte[cols];
        for (int r = chunk * RowsPerChunk; r < Math.Min(_src.Rows, (chunk + 1) * RowsPerChunk); r++)
        {
            Vec.ReadRow(_src, r, row);
            float max = 0;
            foreach (float v in row)
                max = MathF.Max(max, MathF.Abs(v));
            float scale = max / 127f;
            float inv = scale == 0 ? 0 : 1f / scale;
            for (int i = 0; i < cols; i++)
                quantized[i] = (sbyte)Math.Clamp(MathF.Round(row[i] * inv), -127f, 127f);
            if (_dst.InRowQuads)
                RowQuads.StoreRow(quantized, _dst.Pointer, r, cols);
            else
                quantized.CopyTo(new Span<sbyte>(_dst.Pointer + (long)r * cols, cols));
            _dst.Scales[r] = scale;
        }
    }
}
