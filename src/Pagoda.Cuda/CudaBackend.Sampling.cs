using Pagoda.Backends;

namespace Pagoda.Cuda;

/// <summary>
/// Device-side logits reduction: the k best candidates of each row are found on the GPU (two passes:
/// per 2,048-entry chunk, then a merge per row), so a decode step copies k values and ids per row to
/// the host instead of the whole vocabulary. Also the fused residual-add + RMSNorm for models.
/// </summary>
public sealed unsafe partial class CudaBackend : ILogitsTopK, IFusedNormOps
{
    private const int TopKChunk = 2048;

    /// <inheritdoc />
    public int MaxLogitsTopK => 64;

    /// <inheritdoc />
    public void CopyTopKToHost(Tensor logits, int k, Span<float> dst)
    {
        if (k < 1 || k > MaxLogitsTopK)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"top-k must be in 1..{MaxLogitsTopK}");
        _device.MakeCurrent();
        var t = (CudaTensor)logits;
        int rows = t.Rows, vocab = t.Cols;
        int chunks = (vocab + TopKChunk - 1) / TopKChunk;
        long outBytes = (long)rows * 2 * k * sizeof(float);
        if (dst.Length * 4L < outBytes)
            throw new ArgumentException($"destination holds {dst.Length} floats, {rows * 2 * k} needed", nameof(dst));
        using var part = new CudaTensor(DType.F32, [rows * chunks * k, 2], _pool.Rent((long)rows * chunks * k * 8), _pool);
        using var result = new CudaTensor(DType.F32, [rows, 2 * k], _pool.Rent(outBytes), _pool);
        if (!Skip && rows > 0)
        {
            _k.Launch(_k.TopKChunks, "topk_chunks", S, (uint)chunks, (uint)rows, 1, 256, t.Ptr, part.Ptr, vocab, k);
            _k.Launch(_k.TopKMerge, "topk_merge", S, (uint)rows, 1, 1, 256, part.Ptr, result.Ptr, chunks, k);
        }
        CopyOut(result.Ptr, outBytes, dst[..(int)(outBytes / 4)]);
    }
}
