using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Distributed;

/// <summary>
/// The CPU backend's collectives over a <see cref="SharedMemoryGroup"/> (the rehearsal of NCCL's): each rank copies
/// its chunk into its slot, meets the others at the barrier, and reads theirs. Sums run in rank order, so every rank
/// computes the same bits and the replicated residual stream stays identical.
/// </summary>
public sealed class ShmCommunicator(SharedMemoryGroup group) : ICommunicator
{
    /// <inheritdoc />
    public TensorParallelRank Rank { get; } = new(group.RankIndex, group.Size);

    /// <inheritdoc />
    public void AllReduce(Tensor x)
    {
        var data = Host(x);   // [rows, cols]
        for (int off = 0; off < data.Length; off += SharedMemoryGroup.ChunkFloats)
        {
            int n = Math.Min(SharedMemoryGroup.ChunkFloats, data.Length - off);
            var chunk = data.Slice(off, n);
            chunk.CopyTo(group.BeginCollective(out long id));
            group.Barrier(id);
            group.Slot(id, 0)[..n].CopyTo(chunk);
            for (int r = 1; r < group.Size; r++)
                Vec.AddScaled(group.Slot(id, r)[..n], 1f, chunk);   // fma(x, 1, acc) rounds as acc + x
        }
    }

    /// <inheritdoc />
    public void GatherColumns(Tensor part, Tensor? dst)
    {
        var data = Host(part);   // [rows, width]
        var whole = dst == null ? Span<float>.Empty : Host(dst);   // [rows, Σ widths] on rank 0
        int rows = part.Rows, width = part.Cols;
        // Every rank's width, in rank order, so rank 0 knows where each block of columns goes (the widths are fixed
        // by the model, but a chunk carries them to check that the ranks agree).
        int perChunk = Math.Max(1, (SharedMemoryGroup.ChunkFloats - 1) / Math.Max(1, width));
        for (int first = 0; first < rows; first += perChunk)
        {
            int n = Math.Min(perChunk, rows - first);
            var slot = group.BeginCollective(out long id);
            slot[0] = width;
            data.Slice(first * width, n * width).CopyTo(slot[1..]);
            group.Barrier(id);
            if (Rank.Rank != 0)
                continue;
            int total = 0;
            for (int r = 0; r < group.Size; r++)
                total += (int)group.Slot(id, r)[0];
            if (whole.Length != rows * total)
                throw new TensorParallelException($"the ranks' logits widths sum to {total}, not the {whole.Length / Math.Max(1, rows)} rank 0 expects.");
            for (int r = 0, col = 0; r < group.Size; col += (int)group.Slot(id, r)[0], r++)
            {
                var from = group.Slot(id, r);
                int w = (int)from[0];
                for (int i = 0; i < n; i++)
                    from.Slice(1 + i * w, w).CopyTo(whole.Slice((first + i) * total + col, w));
            }
        }
    }

    private static Span<float> Host(Tensor t) => t is CpuTensor c
        ? c.F32 : throw new NotSupportedException("the shared-memory communicator works on the CPU backend's tensors.");
}
