using System.Runtime.InteropServices;
using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Distributed;

/// <summary>
/// Collectives over a <see cref="TcpGroup"/>: the workers send their data to rank 0, which adds them to its own in rank
/// order (the shared-memory communicator's order, so the bits match it) and sends the sum back; the head's logits
/// gather at rank 0 alone.
/// </summary>
public sealed class TcpCommunicator(TcpGroup group) : ICommunicator
{
    /// <inheritdoc />
    public TensorParallelRank Rank { get; } = new(group.RankIndex, group.Size);

    /// <inheritdoc />
    public void AllReduce(Tensor x)
    {
        var data = Host(x);   // [rows, cols]
        if (Rank.Rank != 0)
        {
            group.SendData(0, MemoryMarshal.AsBytes(data));
            Floats(group.ReceiveData(0), data.Length).CopyTo(data);
            return;
        }
        for (int r = 1; r < group.Size; r++)
            Vec.AddScaled(Floats(group.ReceiveData(r), data.Length), 1f, data);   // fma(x, 1, acc) rounds as acc + x
        for (int r = 1; r < group.Size; r++)
            group.SendData(r, MemoryMarshal.AsBytes(data));
    }

    /// <inheritdoc />
    public void GatherColumns(Tensor part, Tensor? dst)
    {
        var data = Host(part);   // [rows, width]
        var whole = dst == null ? Span<float>.Empty : Host(dst);   // [rows, Σ widths] on rank 0
        int rows = part.Rows, width = part.Cols;
        if (Rank.Rank != 0)
        {
            group.SendData(0, MemoryMarshal.AsBytes(data));
            return;
        }
        int total = whole.Length / Math.Max(1, rows), col = width;
        for (int i = 0; i < rows; i++)
            data.Slice(i * width, width).CopyTo(whole.Slice(i * total, width));
        for (int r = 1; r < group.Size; r++)
        {
            var from = MemoryMarshal.Cast<byte, float>(group.ReceiveData(r));
            int w = rows == 0 ? 0 : from.Length / rows;
            if (col + w > total || w * rows != from.Length)
                throw new TensorParallelException($"the ranks' logits widths do not sum to the {total} rank 0 expects.");
            for (int i = 0; i < rows; i++)
                from.Slice(i * w, w).CopyTo(whole.Slice(i * total + col, w));
            col += w;
        }
        if (col != total)
            throw new TensorParallelException($"the ranks' logits widths sum to {col}, not the {total} rank 0 expects.");
    }

    private static ReadOnlySpan<float> Floats(ReadOnlySpan<byte> bytes, int expected)
    {
        var floats = MemoryMarshal.Cast<byte, float>(bytes);
        return floats.Length == expected ? floats
            : throw new TensorParallelException($"a collective brought {floats.Length} floats where {expected} were expected: the group is out of step.");
    }

    private static Span<float> Host(Tensor t) => t is CpuTensor c
        ? c.F32 : throw new NotSupportedException("the TCP communicator works on the CPU backend's tensors.");
}
