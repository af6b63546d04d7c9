using Pagoda.Backends.Cpu;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The contiguous per-worker chunk order of the CPU GEMV/GEMM: every chunk runs exactly once under
/// concurrent claims, an owner walks its region in address order, and Linear gives the same bits with the
/// regions on or off.
/// </summary>
public class CpuRegionClaimsTests
{
    [Theory]
    [InlineData(2, 14)]
    [InlineData(3, 1000)]
    [InlineData(4, 3)]   // fewer chunks than workers: some regions are empty
    public void EveryChunkRunsOnceUnderConcurrentClaims(int workers, int chunks)
    {
        var claims = new RegionClaims(workers);
        for (int round = 0; round < 50; round++)
        {
            claims.Reset(chunks);
            var taken = new int[chunks];
            var perWorker = new List<int>[workers];
            int tickets = chunks;
            var threads = Enumerable.Range(0, workers).Select(w => new Thread(() =>
            {
                perWorker[w] = [];
                // Tickets handed out as the pool does: whoever is free takes the next one.
                while (Interlocked.Decrement(ref tickets) >= 0)
                {
                    int c = claims.Claim(w);
                    Interlocked.Increment(ref taken[c]);
                    perWorker[w].Add(c);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            Assert.All(taken, n => Assert.Equal(1, n));
            for (int w = 0; w < workers; w++)
            {
                // A worker's chunks from its own region come first and ascend.
                int lo = chunks * w / workers, hi = chunks * (w + 1) / workers;
                var own = perWorker[w].TakeWhile(c => c >= lo && c < hi).ToList();
                Assert.Equal(own.OrderBy(c => c), own);
            }
        }
    }

    [Fact]
    public void OneWorkerTakesItsRegionThenTheOthersFromTheirEnds()
    {
        var claims = new RegionClaims(2);
        claims.Reset(6);
        Assert.Equal([0, 1, 2, 5, 4, 3], Enumerable.Range(0, 6).Select(_ => claims.Claim(0)));
        Assert.Throws<InvalidOperationException>(() => claims.Claim(0));
    }
}
