namespace Pagoda.Backends.Cpu;

/// <summary>
/// Weight-only int8 made at load time: per output channel (row) symmetric, scale = max|w| / 127 and
/// q = round(w / scale), so a row's largest weight is exact and the rest err by at most scale / 2.
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
        for (int r = chunk * RowsPerChunk; r < Math.Min(_src.Rows, (chunk + 1) * RowsPerChunk); r++)
        {
            Vec.ReadRow(_src, r, row);
            float max = 0;
            foreach (float v in row)
                max = MathF.Max(max, MathF.Abs(v));
            float scale = max / 127f;
            float inv = scale == 0 ? 0 : 1f / scale;
            sbyte* q = (sbyte*)_dst.Pointer + (long)r * cols;
            for (int i = 0; i < cols; i++)
                q[i] = (sbyte)Math.Clamp(MathF.Round(row[i] * inv), -127f, 127f);
            _dst.Scales[r] = scale;
        }
    }
}
