using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Walks the cache lines of a slice of a weight (its parts, for a stacked weight, in order) issuing software
/// prefetches a few at a time, so a compute-bound op can spread a weight's fetch over its own work.
/// Prefetches never fault and change no result.
/// </summary>
internal unsafe struct PrefetchCursor
{
    private const int LineBytes = 64;

    private readonly CpuTensor? _weight;
    private int _part;
    private byte* _at, _partEnd;
    private long _left;

    /// <summary>Lines [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) of <paramref name="weight"/>'s bytes.</summary>
    public PrefetchCursor(CpuTensor? weight, long first, long count)
    {
        _weight = weight;
        _left = weight == null ? 0 : count;
        _part = -1;
        _at = _partEnd = null;
        if (_left > 0)
        {
            NextPart();
            Skip(first);
        }
    }

    /// <summary>Every line of the weight's bytes (its parts together).</summary>
    public static long Lines(CpuTensor? weight)
    {
        if (weight == null)
            return 0;
        long lines = 0;
        foreach (var p in weight.Parts ?? [weight])
            lines += (p.RowBytes * p.Rows + LineBytes - 1) / LineBytes;
        return lines;
    }

    /// <summary>Lines not yet issued.</summary>
    public readonly long Left => _left;

    /// <summary>Issues up to <paramref name="lines"/> prefetches (into L2: the op running now keeps L1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Step(long lines)
    {
        for (; lines > 0 && _left > 0; lines--, _left--)
        {
            if (_at >= _partEnd)
            {
                NextPart();
                if (_left == 0)
                    return;
            }
            if (Sse.IsSupported)
                Sse.Prefetch1(_at);
            _at += LineBytes;
        }
    }

    private void Skip(long lines)
    {
        while (lines > 0)
        {
            long inPart = (_partEnd - _at + LineBytes - 1) / LineBytes;
            if (lines < inPart)
            {
                _at += lines * LineBytes;
                return;
            }
            lines -= inPart;
            NextPart();
        }
    }

    private void NextPart()
    {
        var parts = _weight!.Parts ?? [_weight];
        _part++;
        if (_part >= parts.Length)
        {
            _left = 0;
            _at = _partEnd = null;
            return;
        }
        _at = parts[_part].Pointer;
        _partEnd = _at + parts[_part].RowBytes * parts[_part].Rows;
    }
}
