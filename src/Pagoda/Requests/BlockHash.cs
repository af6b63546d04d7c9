using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Pagoda.Requests;

/// <summary>
/// The prefix-cache key of a full block: a hash chained over the parent block's hash and this block's
/// token ids. The tokens are kept so a hit is verified rather than trusted.
/// </summary>
public sealed class BlockHash
{
    private const ulong RootParent = 0x5061676f6461UL; // "Pagoda": the parent value of a sequence's first block

    private BlockHash(ulong value, ulong parentValue, int[] tokenIds)
    {
        Value = value;
        ParentValue = parentValue;
        TokenIds = tokenIds;
    }

    /// <summary>The chained hash.</summary>
    public ulong Value { get; }

    /// <summary>The parent block's hash (a fixed root value for the first block).</summary>
    public ulong ParentValue { get; }

    /// <summary>The block's token ids.</summary>
    public int[] TokenIds { get; }

    /// <summary>Hash of a block whose predecessor is <paramref name="parent"/> (null for the first block).</summary>
    public static BlockHash Compute(BlockHash? parent, ReadOnlySpan<int> tokenIds)
    {
        ulong parentValue = parent?.Value ?? RootParent;
        var h = new XxHash3();
        Span<byte> parentBytes = stackalloc byte[8];
        BitConverter.TryWriteBytes(parentBytes, parentValue);
        h.Append(parentBytes);
        h.Append(MemoryMarshal.AsBytes(tokenIds));
        return new BlockHash(h.GetCurrentHashAsUInt64(), parentValue, tokenIds.ToArray());
    }

    /// <summary>
    /// Same hash, same parent hash and the same tokens. Blocks are matched first to last, so the parent
    /// itself was verified one step earlier.
    /// </summary>
    public bool Matches(BlockHash other) =>
        Value == other.Value && ParentValue == other.ParentValue && TokenIds.AsSpan().SequenceEqual(other.TokenIds);
}
