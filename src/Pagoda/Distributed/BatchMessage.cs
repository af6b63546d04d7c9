using System.Runtime.InteropServices;
using Pagoda.Backends;

namespace Pagoda.Distributed;

/// <summary>
/// A step's <see cref="ForwardBatch"/> as rank 0 posts it to the workers: int arrays, each after its length. Its device
/// sampling plan stays behind: rank 0 alone samples, from the gathered logits.
/// </summary>
public static class BatchMessage
{
    /// <summary>A step to run.</summary>
    public const int Step = 1;
    /// <summary>The group is ending: workers exit.</summary>
    public const int Shutdown = 2;
    /// <summary>The first message: what the workers load (JSON).</summary>
    public const int Job = 3;

    /// <summary>
    /// The most bytes a step's message takes: <paramref name="tokens"/> tokens at most (ids, positions, slots, logits rows),
    /// <paramref name="seqs"/> sequences whose block tables cover <paramref name="maxModelLen"/> tokens each.
    /// </summary>
    public static long MaxBytes(int tokens, int seqs, int maxModelLen, int blockSize) =>
        sizeof(int) * (16L + 4L * tokens + 3L * (seqs + 1) + (long)seqs * ((maxModelLen + blockSize - 1) / blockSize + 1));

    /// <summary>The batch's bytes.</summary>
    public static byte[] Encode(ForwardBatch b)
    {
        var ints = new List<int> { b.ReturnHiddenStates ? 1 : 0 };
        void Add(int[] a) { ints.Add(a.Length); ints.AddRange(a); }
        Add(b.InputIds);
        Add(b.Positions);
        Add(b.SlotMapping);
        Add(b.QueryStartLoc);
        Add(b.SeqLens);
        Add(b.LogitsIndices);
        ints.Add(b.BlockTables.Length);
        foreach (var table in b.BlockTables)
            Add(table);
        return MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(ints)).ToArray();
    }

    /// <summary>The batch back from its bytes.</summary>
    public static ForwardBatch Decode(ReadOnlySpan<byte> bytes)
    {
        var ints = MemoryMarshal.Cast<byte, int>(bytes).ToArray();
        int at = 0;
        int[] Next() { int n = ints[at++]; var a = ints.AsSpan(at, n).ToArray(); at += n; return a; }
        bool hidden = ints[at++] != 0;
        int[] ids = Next(), positions = Next(), slots = Next(), starts = Next(), seqLens = Next(), logits = Next();
        var tables = new int[ints[at++]][];
        for (int i = 0; i < tables.Length; i++)
            tables[i] = Next();
        if (at != ints.Length)
            throw new TensorParallelException($"a step message of {bytes.Length} bytes was read short ({at * sizeof(int)}).");
        return new ForwardBatch(ids, positions, slots, tables, starts, seqLens, logits) { ReturnHiddenStates = hidden };
    }
}
