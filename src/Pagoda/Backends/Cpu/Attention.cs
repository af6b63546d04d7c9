using Pagoda.Execution;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Causal attention over the paged KV pool: each query token of a sequence attends to every cached
/// position up to its own, reading keys and values through the sequence's block table. One pool chunk
/// per (token, head); each works alone on its own output slice, so batch composition never changes it.
/// </summary>
internal sealed unsafe class Attention(WorkerPool pool) : PoolJob
{
    private readonly float[][] _scores = new float[pool.Size][];
    private CpuTensor? _q, _dst, _keys, _values;
    private ForwardBatch? _batch;
    private int[] _seqOfToken = [];
    private int _numHeads, _groupSize, _headDim, _blockSize;
    private float _scale;

    public void Paged(CpuTensor q, PagedKvCache cache, int layer, ForwardBatch batch, int numHeads, int numKvHeads,
        int headDim, float scale, CpuTensor dst)
    {
        (_q, _dst, _batch) = (q, dst, batch);
        _keys = (CpuTensor)cache.Keys[layer];
        _values = (CpuTensor)cache.Values[layer];
        (_numHeads, _groupSize, _headDim, _blockSize, _scale) = (numHeads, numHeads / numKvHeads, headDim, cache.BlockSize, scale);
        if (_seqOfToken.Length < batch.NumTokens)
            _seqOfToken = new int[Math.Max(batch.NumTokens, 2 * _seqOfToken.Length)];
        for (int s = 0; s < batch.NumSeqs; s++)
        {
            for (int t = batch.QueryStartLoc[s]; t < batch.QueryStartLoc[s + 1]; t++)
                _seqOfToken[t] = s;
        }
        try
        {
            pool.Run(this, batch.NumTokens * numHeads);
        }
        finally
        {
            _q = _dst = _keys = _values = null;
            _batch = null;
        }
    }

    public override void Execute(int item, int worker)
    {
        var batch = _batch!;
        int token = item / _numHeads, head = item % _numHeads, headDim = _headDim, blockSize = _blockSize;
        int position = batch.Positions[token];
        int[] blockTable = batch.BlockTables[_seqOfToken[token]];
        int kvOffset = head / _groupSize * headDim;
        int kvCols = _keys!.Cols;
        float* keys = (float*)_keys.Pointer + kvOffset, values = (float*)_values!.Pointer + kvOffset;
        var scores = _scores[worker];
        if (scores == null || scores.Length <= position)
            scores = _scores[worker] = new float[Math.Max(position + 1, 2 * (scores?.Length ?? 256))];

        fixed (float* s = scores)
        {
            float* query = (float*)_q!.Pointer + (long)token * _q.Cols + head * headDim;
            float max = float.NegativeInfinity;
            for (int p = 0; p <= position; p++)
            {
                long slot = (long)blockTable[p / blockSize] * blockSize + p % blockSize;
                float v = DotKernels.Dot<F32Weights>(query, (byte*)(keys + slot * kvCols), headDim) * _scale;
                s[p] = v;
                max = MathF.Max(max, v);
            }
            float sum = 0;
            for (int p = 0; p <= position; p++)
            {
                s[p] = MathF.Exp(s[p] - max);
                sum += s[p];
            }
            var output = new Span<float>((float*)_dst!.Pointer + (long)token * _dst.Cols + head * headDim, headDim);
            output.Clear();
            float inv = 1f / sum;
            for (int p = 0; p <= position; p++)
            {
                long slot = (long)blockTable[p / blockSize] * blockSize + p % blockSize;
                Vec.AddScaled(new ReadOnlySpan<float>(values + slot * kvCols, headDim), s[p] * inv, output);
            }
        }
    }
}
