namespace Pagoda.Backends.Cpu;

/// <summary>
/// Maps a pool job's chunk tickets to chunk indices so that each worker walks one contiguous region in
/// address order: worker w owns chunks [w·n/W, (w+1)·n/W) and takes them from the front; a worker whose
/// region is done takes the others' chunks from their back ends, so a slow or descheduled owner's stream
/// stays contiguous and nobody waits. With chunks claimed in one global sequence instead, two workers
/// alternate chunks and each one's weight stream jumps every chunk, restarting the hardware prefetcher.
/// Every ticket gets exactly one chunk not yet taken (tickets = chunks), and which worker computes a chunk
/// never changes its result.
/// </summary>
internal sealed class RegionClaims
{
    // One packed [back:32][front:32] per region, a cache line apart (the owner and a thief both write it).
    private const int Stride = 8;
    private readonly long[] _regions;
    private readonly int _workers;

    public RegionClaims(int workers)
    {
        _workers = Math.Max(1, workers);
        _regions = new long[_workers * Stride];
    }

    /// <summary>Starts a job of <paramref name="chunks"/> chunks (called before the pool runs it).</summary>
    public void Reset(int chunks)
    {
        for (int w = 0; w < _workers; w++)
        {
            long front = (long)chunks * w / _workers, back = (long)chunks * (w + 1) / _workers;
            Volatile.Write(ref _regions[w * Stride], (back << 32) | front);
        }
    }

    /// <summary>The chunk a ticket of <paramref name="worker"/> runs: its own region's front, else another's back.</summary>
    public int Claim(int worker)
    {
        int own = worker % _workers;
        if (Take(own, fromFront: true, out int chunk))
            return chunk;
        for (int i = 1; i < _workers; i++)
        {
            if (Take((own + i) % _workers, fromFront: false, out chunk))
                return chunk;
        }
        throw new InvalidOperationException("more tickets than chunks");
    }

    // Takes the front chunk of a region (advancing front) or its back chunk (lowering back); false once empty.
    private bool Take(int region, bool fromFront, out int chunk)
    {
        ref long r = ref _regions[region * Stride];
        long step = fromFront ? 1 : -(1L << 32);
        while (true)
        {
            long s = Volatile.Read(ref r);
            int front = (int)s, back = (int)(s >> 32);
            if (front >= back)
            {
                chunk = -1;
                return false;
            }
            if (Interlocked.CompareExchange(ref r, s + step, s) == s)
            {
                chunk = fromFront ? front : back - 1;
                return true;
            }
        }
    }
}
