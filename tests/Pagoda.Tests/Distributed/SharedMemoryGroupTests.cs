using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Distributed;

namespace Pagoda.Tests.Distributed;

/// <summary>
/// The tensor-parallel pieces without processes: shard arithmetic, the step message, and the shared-memory
/// collectives between two ranks on two threads of this process (each with its own mapping of the group's file).
/// </summary>
[Collection("tensor-parallel workers")]   // its groups' files would otherwise show in TensorParallelTests' check of /dev/shm
public class SharedMemoryGroupTests
{
    [Fact]
    public void ShardsSplitHeadsEvenlyReplicateScarceKvHeadsAndCoverTheVocabulary()
    {
        var r1 = new TensorParallelRank(1, 2);
        Assert.Equal((2, 2), r1.Even(4, "heads"));
        Assert.Contains("not divisible", Assert.Throws<ArgumentException>(() => new TensorParallelRank(0, 3).Even(4, "num_attention_heads")).Message);
        Assert.Equal((0, 1), new TensorParallelRank(1, 4).KvHeads(2));   // ranks 0, 1 read KV head 0; ranks 2, 3 head 1
        Assert.Equal((1, 1), new TensorParallelRank(2, 4).KvHeads(2));
        Assert.Equal((3, 3), r1.KvHeads(6));
        Assert.Equal([(0, 3), (3, 3), (6, 1)], new TensorParallelRank(0, 3).VocabRanges(7));
    }

    [Fact]
    public void AStepMessageRoundTrips()
    {
        var batch = new ForwardBatch([5, 6, 7], [0, 1, 9], [16, 17, 41], [[1], [2, 3]], [0, 2, 3], [2, 10], [1, 2]) { ReturnHiddenStates = true };
        var back = BatchMessage.Decode(BatchMessage.Encode(batch));
        Assert.Equal(batch.InputIds, back.InputIds);
        Assert.Equal(batch.Positions, back.Positions);
        Assert.Equal(batch.SlotMapping, back.SlotMapping);
        Assert.Equal(batch.QueryStartLoc, back.QueryStartLoc);
        Assert.Equal(batch.SeqLens, back.SeqLens);
        Assert.Equal(batch.LogitsIndices, back.LogitsIndices);
        Assert.Equal(batch.BlockTables[1], back.BlockTables[1]);
        Assert.True(back.ReturnHiddenStates);
        // The bound the group's message area is sized by covers the largest step of its limits.
        var largest = new ForwardBatch(new int[64], new int[64], new int[64], [new int[16], new int[16]], [0, 32, 64], [256, 256], new int[64]);
        Assert.True(BatchMessage.Encode(largest).Length <= BatchMessage.MaxBytes(64, 2, 256, 16));
        Assert.True(BatchMessage.Encode(largest).Length > BatchMessage.MaxBytes(64, 2, 256, 16) - 64);
    }

    [Fact]
    public void AStepLargerThanTheMessageAreaIsRefused()
    {
        using var g = SharedMemoryGroup.Create(2, messageBytes: 4096);
        var e = Assert.Throws<TensorParallelException>(() => g.Post(BatchMessage.Step, new byte[8192]));
        Assert.Equal("a step of 8192 bytes does not fit the group's 4096 byte message area.", e.Message);
        using var worker = SharedMemoryGroup.Join(g.Path, 1, 2);   // the worker reads the area's size from the header
        g.Post(BatchMessage.Step, new byte[4096]);
        Assert.Equal(BatchMessage.Step, worker.Receive(out var payload));
        Assert.Equal(4096, payload.Length);
    }

    private static void OnTwoRanks(Action<ShmCommunicator> each)
    {
        using var g0 = SharedMemoryGroup.Create(2);
        using var g1 = SharedMemoryGroup.Join(g0.Path, 1, 2);
        var t1 = Task.Run(() => each(new ShmCommunicator(g1)));
        each(new ShmCommunicator(g0));
        t1.GetAwaiter().GetResult();
    }

    [Fact]
    public void AllReduceSumsInRankOrderAcrossSeveralChunks()
    {
        int rows = 3, cols = SharedMemoryGroup.ChunkFloats / 2 + 7;   // 1.5 chunks and a bit
        var results = new float[2][];
        OnTwoRanks(comm =>
        {
            int r = comm.Rank.Rank;
            using var x = CpuTensor.Allocate([rows, cols]);
            var data = x.F32;
            for (int i = 0; i < data.Length; i++)
                data[i] = r == 0 ? i * 0.5f : 1f / (i + 1);
            comm.AllReduce(x);
            comm.AllReduce(x);   // twice: the second round reuses the first's buffer set
            results[r] = data.ToArray();
        });
        Assert.Equal(results[0], results[1]);
        for (int i = 0; i < results[0].Length; i += 99_991)
        {
            float once = i * 0.5f + 1f / (i + 1);
            Assert.Equal(once + once, results[0][i]);
        }
    }

    [Fact]
    public void GatherColumnsPutsEachRanksLogitsSideBySideOnRankZero()
    {
        float[]? gathered = null;
        OnTwoRanks(comm =>
        {
            int r = comm.Rank.Rank, width = r == 0 ? 3 : 2;
            using var part = CpuTensor.Allocate([4, width]);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < width; j++)
                    part.Row(i)[j] = 100 * i + 10 * r + j;
            using var dst = r == 0 ? CpuTensor.Allocate([4, 5]) : null;
            comm.GatherColumns(part, dst);
            if (r == 0)
                gathered = dst!.F32.ToArray();
        });
        Assert.Equal([0, 1, 2, 10, 11, 100, 101, 102, 110, 111, 200, 201, 202, 210, 211, 300, 301, 302, 310, 311], gathered!);
    }

    [Fact]
    public void AWaitEndsWithThePeersFailureInsteadOfHanging()
    {
        using var g0 = SharedMemoryGroup.Create(2);
        g0.WatchPeers(() => "worker 1 is gone");
        using var x = CpuTensor.Allocate([1, 4]);
        var e = Assert.Throws<TensorParallelException>(() => new ShmCommunicator(g0).AllReduce(x));
        Assert.Equal("worker 1 is gone", e.Message);
    }
}
