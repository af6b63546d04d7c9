using Pagoda.KvCache;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.Tests.Scheduling;

/// <summary>
/// Disaggregated prefill's bookkeeping, without a model: a decode request waits for its remote KV holding blocks that
/// stay out of the prefix cache until the KV lands; a prefill for a remote decode keeps its blocks after it finishes.
/// </summary>
public class RemoteKvsSchedulerTests
{
    private static readonly int[] Prompt = Enumerable.Range(100, 10).ToArray();

    private static KvTransferParams Remote => new()
    {
        DoRemotePrefill = true, RemoteEngineId = "p", RemoteRequestId = "r", RemoteBlockIds = [20, 21, 22], RemoteHost = "127.0.0.1", RemotePort = 1,
    };

    private static Request Req(string id, KvTransferParams? kv = null, int maxTokens = 8) =>
        new(id, Prompt, new SamplingParams { KvTransferParams = kv }, maxTokens, 0, new HashSet<int> { 2 });

    private static (Scheduler, KvCacheManager) Make()
    {
        var kv = new KvCacheManager(32, 4, enablePrefixCaching: true);
        return (new Scheduler(new SchedulerConfig(100, 4, 100), kv), kv);
    }

    private static Dictionary<string, int[]> Tokens(SchedulerOutput o, int token = 7) =>
        o.Scheduled.Where(s => s.SamplesToken).ToDictionary(s => s.Request.RequestId, _ => new[] { token });

    [Fact]
    public void ADecodeWaitsForItsKvThenComputesOnlyTheLastPromptToken()
    {
        var (s, kv) = Make();
        var d = Req("d", Remote);
        s.AddRequest(d);
        var o1 = s.Schedule();
        Assert.Empty(o1.Scheduled);
        var load = Assert.Single(o1.RemoteLoads);
        Assert.Equal((0, 3), (load.FirstBlock, load.NumBlocks)); // 9 of the 10 tokens come from the producer
        Assert.Equal(RequestStatus.WaitingForRemoteKvs, d.Status);
        Assert.Equal((true, false, 1), (s.HasUnfinishedRequests, s.HasSchedulableRequests, s.NumWaiting));
        // Until the KV lands nobody may hit these blocks.
        Assert.Null(kv.Pool.GetCachedBlock(d.BlockHashes[0]));
        Assert.Empty(s.Schedule().Scheduled);

        Assert.Null(s.FinishRemoteLoad("d", loaded: true, recomputeOnFailure: false));
        Assert.Equal(9, d.NumComputedTokens);
        Assert.Equal(load.BlockIds[0], kv.Pool.GetCachedBlock(d.BlockHashes[0])!.BlockId);
        var o2 = s.Schedule();
        Assert.Equal([("d", 1)], o2.Scheduled.Select(x => (x.Request.RequestId, x.NumTokens)));
        Assert.Equal(load.BlockIds, o2.Scheduled[0].BlockIds);
    }

    [Fact]
    public void LocalPrefixHitsArePulledNoMore()
    {
        var (s, kv) = Make();
        var local = Req("local", maxTokens: 1);
        s.AddRequest(local);
        var o = s.Schedule();
        s.Update(o, Tokens(o));
        Assert.True(local.IsFinished);
        var d = Req("d", Remote);
        s.AddRequest(d);
        var load = Assert.Single(s.Schedule().RemoteLoads);
        Assert.Equal((2, 1), (load.FirstBlock, load.NumBlocks)); // blocks 0 and 1 are hits, block 2 comes from the producer
        Assert.Equal(8, d.NumComputedTokens);
    }

    [Fact]
    public void AnAbortDuringTheLoadFreesTheBlocksOnlyWhenTheLoadEnds()
    {
        var (s, kv) = Make();
        var d = Req("d", Remote);
        s.AddRequest(d);
        s.Schedule();
        s.FinishRequests([d], RequestStatus.FinishedAborted);
        Assert.True(kv.Usage > 0); // the transfer may still be writing them
        Assert.True(s.IsLoadingRemoteKvs("d")); // so the id is not free either
        Assert.Null(s.FinishRemoteLoad("d", loaded: false, recomputeOnFailure: false));
        Assert.Equal(0, kv.Usage);
        Assert.False(s.IsLoadingRemoteKvs("d"));
        Assert.False(s.HasUnfinishedRequests);
    }

    [Fact]
    public void AFailedLoadFailsOrRecomputes()
    {
        var (s, kv) = Make();
        var d = Req("d", Remote);
        s.AddRequest(d);
        s.Schedule();
        Assert.Same(d, s.FinishRemoteLoad("d", loaded: false, recomputeOnFailure: false));
        s.FinishRequests([d], RequestStatus.FinishedAborted); // what the engine's failure does
        Assert.Equal(0, kv.Usage);

        var e = Req("e", Remote);
        s.AddRequest(e);
        s.Schedule();
        Assert.Null(s.FinishRemoteLoad("e", loaded: false, recomputeOnFailure: true));
        Assert.Equal([("e", 10)], s.Schedule().Scheduled.Select(x => (x.Request.RequestId, x.NumTokens))); // the whole prompt, here
    }

    [Fact]
    public void APrefillCappedByMaxTokensHoldsItsBlocksUntilReleased()
    {
        var (s, kv) = Make();
        var p = Req("p", new KvTransferParams { DoRemoteDecode = true }, maxTokens: 1);
        s.AddRequest(p);
        var o = s.Schedule();
        var blocks = o.Scheduled[0].BlockIds;
        s.Update(o, Tokens(o));
        Assert.Equal(RequestStatus.FinishedLength, p.Status);
        Assert.Equal(blocks, s.HeldBlockIds("p"));
        Assert.Equal([p], s.TakeNewlyHeld());
        Assert.True(kv.Usage > 0);
        Assert.False(s.HasUnfinishedRequests);

        // The same id again while held (a retried prefill) does not hold: the first hold may be being read.
        var again = Req("p", new KvTransferParams { DoRemoteDecode = true }, maxTokens: 1);
        s.AddRequest(again);
        o = s.Schedule();
        s.Update(o, Tokens(o));
        Assert.Empty(s.TakeNewlyHeld());
        Assert.Equal(blocks, s.HeldBlockIds("p"));

        Assert.True(s.ReleaseHeldBlocks("p"));
        Assert.False(s.ReleaseHeldBlocks("p"));
        Assert.Equal(0, kv.Usage);
    }

    [Fact]
    public void APrefillThatStoppedHoldsNothing()
    {
        var (s, kv) = Make();
        var p = Req("p", new KvTransferParams { DoRemoteDecode = true }, maxTokens: 4);
        s.AddRequest(p);
        var o = s.Schedule();
        s.Update(o, Tokens(o, token: 2)); // EOS: the client has its whole answer, nobody will pull
        Assert.Equal(RequestStatus.FinishedStopped, p.Status);
        Assert.Null(s.HeldBlockIds("p"));
        Assert.Equal(0, kv.Usage);
    }
}
