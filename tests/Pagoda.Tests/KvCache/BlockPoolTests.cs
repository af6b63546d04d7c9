using Pagoda.KvCache;
using Pagoda.Requests;

namespace Pagoda.Tests.KvCache;

/// <summary>Exact block ids, ref counts and eviction order of the pool and its free queue.</summary>
public class BlockPoolTests
{
    private static int[] Ids(IEnumerable<KvCacheBlock> blocks) => blocks.Select(b => b.BlockId).ToArray();

    [Fact]
    public void NewBlocksComeFromTheHeadInIdOrder()
    {
        var pool = new BlockPool(6, enableCaching: true);
        Assert.Equal([0, 1, 2], Ids(pool.GetNewBlocks(3)));
        Assert.Equal([3, 4, 5], Ids(pool.FreeQueue));
        Assert.Equal(0.5, pool.Usage);
    }

    [Fact]
    public void FreedBlocksJoinTheTailInTheGivenOrder()
    {
        var pool = new BlockPool(5, enableCaching: true);
        var a = pool.GetNewBlocks(3);
        a.Reverse();
        pool.FreeBlocks(a); // a request frees last block first
        Assert.Equal([3, 4, 2, 1, 0], Ids(pool.FreeQueue));
        Assert.Equal([3, 4, 2], Ids(pool.GetNewBlocks(3)));
    }

    [Fact]
    public void TouchRemovesAFreeBlockFromTheMiddleAndCountsHolders()
    {
        var pool = new BlockPool(4, enableCaching: true);
        var b = pool.GetNewBlocks(2);
        pool.FreeBlocks(b);
        Assert.Equal([2, 3, 0, 1], Ids(pool.FreeQueue));
        pool.Touch([pool[0]]);
        Assert.Equal([2, 3, 1], Ids(pool.FreeQueue));
        pool.Touch([pool[0]]);
        Assert.Equal(2, pool[0].RefCount);
        pool.FreeBlocks([pool[0]]);
        Assert.Equal(1, pool[0].RefCount);
        Assert.Equal(3, pool.NumFreeBlocks);
        pool.FreeBlocks([pool[0]]);
        Assert.Equal([2, 3, 1, 0], Ids(pool.FreeQueue));
    }

    [Fact]
    public void CachedBlocksAreFoundVerifiedAndLazilyEvicted()
    {
        var pool = new BlockPool(2, enableCaching: true);
        var h = BlockHash.Compute(null, [1, 2, 3, 4]);
        var blocks = pool.GetNewBlocks(1);
        pool.CacheBlock(blocks[0], h);
        pool.FreeBlocks(blocks);
        // Still cached while free.
        Assert.Same(pool[0], pool.GetCachedBlock(BlockHash.Compute(null, [1, 2, 3, 4])));
        Assert.Null(pool.GetCachedBlock(BlockHash.Compute(null, [1, 2, 3, 5])));
        // Handing the block out again evicts its entry.
        pool.GetNewBlocks(2);
        Assert.Null(pool.GetCachedBlock(h));
        Assert.Null(pool[0].Hash);
    }

    [Fact]
    public void HashesChainOverParents()
    {
        var a = BlockHash.Compute(null, [1, 2]);
        var b1 = BlockHash.Compute(a, [3, 4]);
        var b2 = BlockHash.Compute(BlockHash.Compute(null, [9, 9]), [3, 4]);
        Assert.NotEqual(b1.Value, b2.Value);
        Assert.True(b1.Matches(BlockHash.Compute(BlockHash.Compute(null, [1, 2]), [3, 4])));
        Assert.False(b1.Matches(b2));
    }

    [Fact]
    public void FreeingTwiceIsAnError()
    {
        var pool = new BlockPool(2, enableCaching: false);
        var b = pool.GetNewBlocks(1);
        pool.FreeBlocks(b);
        Assert.Throws<InvalidOperationException>(() => pool.FreeBlocks(b));
    }
}
