using NetMQ;
using NetMQ.Sockets;
using Pagoda.Engine;
using Pagoda.KvEvents;
using Pagoda.Requests;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.KvEvents;

/// <summary>
/// A real engine publishing KV events over ZMQ on loopback, received the way the llm-d router receives them (a SUB
/// socket bound locally that vLLM's publisher connects to) and decoded with MessagePack's own reader.
/// </summary>
public class KvEventsEngineTests
{
    private const string Topic = "kv@pod-a@tiny-llama";
    private const int BlockSize = 4;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static readonly SamplingParams Three = new() { Temperature = 0, MaxTokens = 3, IgnoreEos = true };

    // 18 prompt tokens: four full blocks and a partial one; the third output token's predecessor fills block 4.
    private static readonly int[] PromptA = Enumerable.Range(0, 18).Select(i => 200 + i * 7).ToArray();

    private static LLMEngine Engine(string endpoint, string? replay = null, int numBlocks = 64, int maxModelLen = 64) => new(new EngineArgs
    {
        Model = TestPaths.Model("tiny-llama"), BlockSize = BlockSize, NumKvBlocks = numBlocks, MaxModelLen = maxModelLen,
        GenerationConfig = "vllm",
        KvEventsConfig = new KvEventsConfig { EnableKvCacheEvents = true, Endpoint = endpoint, ReplayEndpoint = replay, Topic = Topic },
    });

    // Runs one request to the end; its prompt and output tokens.
    private static int[] Run(LLMEngine engine, string id, int[] prompt)
    {
        engine.AddRequest(id, new PromptInput { TokenIds = prompt }, Three);
        int[] output = [];
        while (engine.HasUnfinishedRequests)
        {
            foreach (var o in engine.Step())
            {
                if (o.Finished)
                    output = o.Outputs[0].TokenIds.ToArray();
            }
        }
        return [.. prompt, .. output];
    }

    /// <summary>
    /// A PUB socket drops what it sends before a subscription reaches it: resets (one AllBlocksCleared batch each)
    /// go out until one arrives. Returns its sequence number; nothing sent before it is still on the way.
    /// </summary>
    private static long Sync(LLMEngine engine, KvEventSubscriber sub)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            Assert.True(engine.ResetPrefixCache());
            if (sub.Receive(TimeSpan.FromMilliseconds(100)) is { } m)
            {
                // Resets sent before the subscription took may still be on their way: drain them, or a later read
                // would take a stale clear for the test's own.
                long seq = m.Seq;
                for (var more = sub.Receive(TimeSpan.FromMilliseconds(500)); more is { } next; more = sub.Receive(TimeSpan.FromMilliseconds(500)))
                {
                    Assert.Equal(["AllBlocksCleared"], Assert.Single(KvEventWire.Decode(next.Payload).Events));
                    seq = next.Seq;
                }
                Assert.Equal(["AllBlocksCleared"], Assert.Single(KvEventWire.Decode(m.Payload).Events));
                return seq;
            }
        }
        throw new TimeoutException("No KV event batch reached the subscriber.");
    }

    // Batches up to and including the next one that holds AllBlocksCleared (a reset the test sends as a marker).
    private static List<(string Topic, long Seq, KvEventWire.Batch Batch)> ReceiveThroughReset(KvEventSubscriber sub)
    {
        var batches = new List<(string, long, KvEventWire.Batch)>();
        while (sub.Receive(Wait) is { } m)
        {
            var batch = KvEventWire.Decode(m.Payload);
            batches.Add((m.Topic, m.Seq, batch));
            if (batch.Events.Any(e => (string)e[0]! == "AllBlocksCleared"))
                return batches;
        }
        throw new TimeoutException($"No reset marker after {batches.Count} batches.");
    }

    private static List<BlockHash> Chain(int[] tokens, int numBlocks)
    {
        var chain = new List<BlockHash>();
        for (int i = 0; i < numBlocks; i++)
            chain.Add(BlockHash.Compute(chain.Count == 0 ? null : chain[^1], tokens.AsSpan(i * BlockSize, BlockSize)));
        return chain;
    }

    // The stored runs' hashes, each run's parent checked against the hash before it in the chain and its tokens
    // against the chain's blocks.
    private static void AssertStoredChain(IEnumerable<KvEventWire.Stored> runs, List<BlockHash> chain, int first)
    {
        int next = first;
        foreach (var run in runs)
        {
            Assert.Equal(next == 0 ? null : chain[next - 1].Value, run.Parent);
            Assert.Equal(chain.Skip(next).Take(run.Hashes.Count).Select(h => h.Value), run.Hashes);
            Assert.Equal(chain.Skip(next).Take(run.Hashes.Count).SelectMany(h => h.TokenIds).Select(t => (long)t), run.Tokens);
            Assert.Equal((BlockSize, null, "GPU", null), (run.BlockSize, run.LoraId, run.Medium, run.LoraName));
            next += run.Hashes.Count;
        }
        Assert.Equal(chain.Count, next);
    }

    [Fact]
    public void ASharedPrefixRunTwiceStoresTheEnginesHashChainOnce()
    {
        using var sub = new KvEventSubscriber("kv@");
        using var engine = Engine(sub.Endpoint);
        long seq0 = Sync(engine, sub);

        int[] a = Run(engine, "a", PromptA);
        int[] promptB = [.. PromptA[..16], 4000, 4001];
        int[] b = Run(engine, "b", promptB);
        Assert.True(engine.ResetPrefixCache());
        var batches = ReceiveThroughReset(sub);

        // One batch a step with events, numbered on from the sync batch without a gap, on the configured topic.
        Assert.Equal(Enumerable.Range(1, batches.Count).Select(i => seq0 + i), batches.Select(x => x.Seq));
        Assert.All(batches, x => Assert.Equal(Topic, x.Topic));
        Assert.All(batches, x => Assert.Equal(0UL, x.Batch.Rank));
        double now = (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds;
        Assert.All(batches, x => Assert.InRange(x.Batch.Ts, now - 120, now + 1));

        var events = batches.SelectMany(x => x.Batch.Events).ToList();
        Assert.Equal(["AllBlocksCleared"], events[^1]);
        Assert.DoesNotContain(events, e => (string)e[0]! == "BlockRemoved");
        var stored = events.Where(e => (string)e[0]! == "BlockStored").Select(KvEventWire.AsStored).ToList();

        // A: blocks 0-4 (the fifth holds two prompt and two output tokens), with no parent before block 0.
        var chainA = Chain(a, 5);
        int runsOfA = stored.FindIndex(s => s.Hashes.Contains(Chain(b, 5)[4].Value));
        AssertStoredChain(stored.Take(runsOfA), chainA, first: 0);
        // B hits A's first four blocks: only its fifth is stored, chained to A's fourth.
        var chainB = Chain(b, 5);
        Assert.Equal(chainA.Take(4).Select(h => h.Value), chainB.Take(4).Select(h => h.Value));
        AssertStoredChain(stored.Skip(runsOfA), chainB, first: 4);
        Assert.Equal(chainA[3].Value, stored[runsOfA].Parent);
    }

    [Fact]
    public void EvictionsFromATinyPoolAreRemoved()
    {
        using var sub = new KvEventSubscriber("kv@");
        // Eight blocks of four: the second request must take back blocks the first left cached.
        using var engine = Engine(sub.Endpoint, numBlocks: 8, maxModelLen: 32);
        Sync(engine, sub);
        int[] a = Run(engine, "a", PromptA);
        Run(engine, "c", Enumerable.Range(0, 18).Select(i => 3000 + i).ToArray());
        Assert.True(engine.ResetPrefixCache());
        var events = ReceiveThroughReset(sub).SelectMany(x => x.Batch.Events).ToList();

        // A held blocks 0-4 and freed them last first, behind the never-used 5-7: C's five blocks are 5, 6, 7, then
        // A's fifth and fourth, whose hashes leave the cache in that order.
        var chainA = Chain(a, 5);
        var removed = events.Where(e => (string)e[0]! == "BlockRemoved").SelectMany(KvEventWire.AsRemoved).ToList();
        Assert.Equal([chainA[4].Value, chainA[3].Value], removed);
        int firstRemoved = events.FindIndex(e => (string)e[0]! == "BlockRemoved");
        var storedBefore = events.Take(firstRemoved).Where(e => (string)e[0]! == "BlockStored").SelectMany(e => KvEventWire.AsStored(e).Hashes);
        Assert.Subset(storedBefore.ToHashSet(), removed.ToHashSet());
    }

    [Fact]
    public async Task TheAsyncEngineResetsOnItsLoopAndPublishesTheClear()
    {
        using var sub = new KvEventSubscriber("kv@");
        using var engine = new AsyncLLMEngine(Engine(sub.Endpoint));
        var deadline = DateTime.UtcNow + Wait;
        (string Topic, long Seq, byte[] Payload)? m = null;
        while (m is null && DateTime.UtcNow < deadline)
        {
            Assert.True(await engine.ResetPrefixCacheAsync());
            m = sub.Receive(TimeSpan.FromMilliseconds(100));
        }
        Assert.NotNull(m);
        Assert.Equal(["AllBlocksCleared"], Assert.Single(KvEventWire.Decode(m.Value.Payload).Events));
    }

    [Fact]
    public void ALateSubscriberRecoversMissedBatchesThroughReplay()
    {
        int pubPort = KvEventWire.FreePort(), replayPort = KvEventWire.FreePort();
        using var engine = Engine($"tcp://127.0.0.1:{pubPort}", replay: $"tcp://127.0.0.1:{replayPort}");
        // Nobody listens yet: these batches go nowhere.
        int[] a = Run(engine, "a", PromptA);

        using var sub = new KvEventSubscriber("kv@", pubPort);
        long seen = Sync(engine, sub);
        Assert.True(seen > 0, "the first batches should have been missed");
        var live = sub.Receive(TimeSpan.Zero);
        Assert.Null(live);

        using var replay = new DealerSocket($">tcp://127.0.0.1:{replayPort}");
        var replayed = Replay(replay, 0);
        Assert.Equal(Enumerable.Range(0, (int)seen + 1).Select(i => (long)i), replayed.Select(r => r.Seq));
        var stored = replayed.SelectMany(r => KvEventWire.Decode(r.Payload).Events)
            .Where(e => (string)e[0]! == "BlockStored").Select(KvEventWire.AsStored);
        AssertStoredChain(stored, Chain(a, 5), first: 0);

        // From a later sequence number: only what is kept from there on, then the end marker.
        Assert.Equal([seen], Replay(replay, seen).Select(r => r.Seq));
        Assert.Empty(Replay(replay, seen + 1));
    }

    // vLLM's replay protocol: the start sequence number as 8 bytes big-endian; [seq, payload] frames back until
    // the end marker, seq -1 with an empty payload.
    private static List<(long Seq, byte[] Payload)> Replay(DealerSocket replay, long start)
    {
        replay.SendMoreFrameEmpty().SendFrame(KvEventWire.SeqBytes(start));
        var got = new List<(long, byte[])>();
        while (true)
        {
            NetMQMessage? msg = null;
            Assert.True(replay.TryReceiveMultipartMessage(Wait, ref msg), "no replay answer");
            Assert.Equal(3, msg!.FrameCount);
            Assert.Equal(0, msg[0].MessageSize);
            long seq = KvEventWire.Seq(msg[1].ToByteArray());
            if (seq == -1)
            {
                Assert.Equal(0, msg[2].MessageSize);
                return got;
            }
            got.Add((seq, msg[2].ToByteArray()));
        }
    }

    [Fact]
    public void AFullQueueDropsBatchesWithAWarningAndLeavesAGap()
    {
        var warnings = new List<string>();
        var config = new KvEventsConfig
        {
            EnableKvCacheEvents = true, Endpoint = "inproc://kv-drop-test", ReplayEndpoint = "inproc://kv-drop-replay",
            MaxQueueSize = 1, BufferSteps = 100_000,
        };
        using var publisher = new ZmqEventPublisher(config, w => { lock (warnings) warnings.Add(w); });
        var batch = new KvEventBatch(1, [new Pagoda.KvCache.AllBlocksCleared()]);
        int published = 0;
        for (; published < 20_000 && publisher.DroppedBatches == 0; published++)
            publisher.Publish(batch);
        Assert.True(publisher.DroppedBatches > 0);
        lock (warnings)
            Assert.StartsWith("KV events: the publish queue is full (max_queue_size 1); dropped batch ", Assert.Single(warnings));

        // One more once the queue has room again, sent after the gap.
        long dropped;
        do
        {
            Thread.Sleep(20);
            dropped = publisher.DroppedBatches;
            publisher.Publish(batch);
            published++;
        }
        while (publisher.DroppedBatches != dropped);

        // The dropped batches kept their sequence numbers: what was sent has gaps where they were.
        using var replay = new DealerSocket(">inproc://kv-drop-replay");
        List<long> seqs = [];
        for (var deadline = DateTime.UtcNow + Wait; DateTime.UtcNow < deadline && (seqs.Count == 0 || seqs[^1] != published - 1);)
            seqs = Replay(replay, 0).Select(r => r.Seq).ToList();
        Assert.Equal(published - publisher.DroppedBatches, seqs.Count);
        Assert.Equal(published - 1, seqs[^1]);
        Assert.Contains(Enumerable.Range(0, published), i => !seqs.Contains(i));
    }
}
