using System.Net;
using System.Net.Sockets;
using Pagoda.Engine;
using Pagoda.KvTransfer;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.KvTransfer;

/// <summary>
/// A pull that cannot complete fails its decode request cleanly (kv_load_failure_policy fail, vLLM's default) or
/// prefills locally (recompute); either way no block leaks on either side, and the consumer's other requests go on.
/// </summary>
public class KvTransferFailureTests
{
    private static readonly GoldenCase G = Golden.Load("fortune-chat", "ids", 2); // 33 tokens: two full blocks and a partial one

    [Fact]
    public async Task ProducerGoneBeforeThePullFailsTheDecode()
    {
        using var pair = new PdPair("fortune-chat");
        var remote = await pair.Prefill("r", G.PromptIds);
        pair.DisposeProducer();
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => pair.Decode("r", G.PromptIds, 8, remote));
        var kv = Assert.IsType<KvTransferException>(e.InnerException);
        Assert.Contains($"127.0.0.1:{remote!.RemotePort}", kv.Message);
        await PdPair.WaitIdle(pair.Consumer);
    }

    [Fact]
    public async Task ProducerClosingMidPullFailsTheDecodeWhileOtherRequestsRun()
    {
        using var pair = new PdPair("fortune-chat");
        var layout = pair.Consumer.Engine.KvConnector!.Layout;
        using var fake = new FakeProducer();
        var remote = fake.Params(G.PromptIds.Length, [7, 8, 9]);
        var decode = pair.Decode("pd", G.PromptIds, 8, remote);
        var pull = await fake.Pulled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(("prefill-fake", "cmpl-fake"), (pull.EngineId, pull.RequestId));
        Assert.Equal(layout, pull.Layout);
        Assert.Equal([7, 8], pull.BlockIds); // 32 of the 33 tokens come from the producer: two blocks
        // The consumer's loop is not blocked by the stalled pull: a local request runs to the end meanwhile.
        var local = await pair.Decode("local", G.PromptIds, G.OutputIds.Length, null).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(G.OutputIds, local.Outputs[0].TokenIds);
        Assert.Equal(1, pair.Consumer.Stats.NumWaiting); // the decode still waits for its KV
        // A valid header, one and a half layers, then the producer dies.
        fake.Finish(KvTransferWire.EncodeOk(layout, 2), (int)(layout.BlockBytes * 2 * 3));
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => decode.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("closed the connection", Assert.IsType<KvTransferException>(e.InnerException).Message);
        await PdPair.WaitIdle(pair.Consumer);
        pair.Dispose();
        PdPair.AssertNoLeakedBlocks(pair.Consumer);
    }

    [Fact]
    public async Task AbortedDecodeFreesItsBlocksOnceThePullStops()
    {
        using var pair = new PdPair("fortune-chat");
        using var fake = new FakeProducer();
        using var cancel = new CancellationTokenSource();
        var decode = pair.Decode("pd", G.PromptIds, 8, fake.Params(G.PromptIds.Length, [1, 2, 3]), cancel.Token);
        await fake.Pulled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, pair.Consumer.Engine.KvConnector!.NumLoading); // (the loop's Stats may be a step old here)
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => decode);
        // The pull is cancelled (the fake producer sees the connection close) and only then are the blocks freed.
        await fake.Closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await PdPair.WaitIdle(pair.Consumer);
    }

    [Fact]
    public async Task HeldBlocksAreReleasedAfterTheTimeoutAndALatePullIsRefused()
    {
        var producer = new KvTransferConfig
        {
            KvRole = "kv_producer", KvPort = 0, EngineId = "prefill-0", AbortRequestTimeout = TimeSpan.FromMilliseconds(500),
        };
        using var pair = new PdPair("fortune-chat", producer: producer);
        var remote = await pair.Prefill("r", G.PromptIds);
        Assert.Equal(1, pair.Producer.Engine.KvConnector!.NumPendingSends); // held for the consumer
        await PdPair.WaitIdle(pair.Producer, TimeSpan.FromSeconds(5)); // nobody came: released
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => pair.Decode("r", G.PromptIds, 8, remote));
        var kv = Assert.IsType<KvTransferException>(e.InnerException);
        Assert.Equal(KvPullStatus.UnknownRequest, kv.Status);
        await PdPair.WaitIdle(pair.Consumer);
        pair.Dispose();
        PdPair.AssertNoLeakedBlocks(pair.Producer);
        PdPair.AssertNoLeakedBlocks(pair.Consumer);
    }

    [Fact]
    public async Task HeldBlocksFillingThePoolMakeRequestsWaitWithoutSpinning()
    {
        // 40 blocks of 16 hold 640 tokens; four 130-token prefills hold 36 of them, and a 512-token request needs 32.
        // The holds last 6 s: the 0.8 s watched below must end well before they expire even when a loaded test run
        // delays the timers by seconds (with 3 s, a CI run once saw every hold gone and the request done by then).
        var producer = new KvTransferConfig
        {
            KvRole = "kv_producer", KvPort = 0, EngineId = "prefill-0", AbortRequestTimeout = TimeSpan.FromSeconds(6),
        };
        using var pair = new PdPair("fortune-chat", producer: producer, producerBlocks: 40);
        var long130 = Golden.Load("fortune-chat", "ids", 3).PromptIds;
        for (int i = 0; i < 4; i++)
            Assert.NotNull(await pair.Prefill($"held{i}", [.. long130.Skip(i), i])); // distinct prompts: no shared blocks
        var waiting = PdPair.Prefill(pair.Producer, "big", [.. Enumerable.Repeat(long130, 4).SelectMany(x => x).Take(500)]);
        await Task.Delay(300);
        long steps = pair.Producer.Engine.Timings.Steps;
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(4, pair.Producer.Engine.KvConnector!.NumPendingSends);   // the blocks were still held throughout
        Assert.True(pair.Producer.Engine.Timings.Steps - steps <= 2, "the loop steps while nothing can run");
        // The holds expire (nobody pulls them) and the request runs.
        Assert.NotNull(await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        await PdPair.WaitIdle(pair.Producer, TimeSpan.FromSeconds(16));   // the big prefill is held 6 s in turn
    }

    [Fact]
    public async Task ADecodeAbortedBeforeItsPullStartedTellsTheProducerToFreeItsBlocks()
    {
        // One request at a time on the consumer: a stalled pull holds the seat, so the second decode waits in the queue.
        using var pair = new PdPair("fortune-chat", consumerMaxNumSeqs: 1);
        using var fake = new FakeProducer();
        var stalled = pair.Decode("stalled", G.PromptIds, 8, fake.Params(G.PromptIds.Length, [1, 2, 3]));
        await fake.Pulled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var remote = await pair.Prefill("r", G.PromptIds);
        Assert.Equal(1, pair.Producer.Engine.KvConnector!.NumPendingSends);
        using var cancel = new CancellationTokenSource();
        var queued = pair.Decode("r", G.PromptIds, 8, remote, cancel.Token);
        await Task.Delay(100);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        // Without the notification the blocks would wait for the producer's 480 s timeout.
        await PdPair.WaitIdle(pair.Producer, TimeSpan.FromSeconds(5));
        fake.Finish([], 0);
        await Assert.ThrowsAsync<RequestFailedException>(() => stalled);
        await PdPair.WaitIdle(pair.Consumer);
    }

    [Fact]
    public async Task RecomputePolicyPrefillsLocallyWhenThePullFails()
    {
        var consumer = new KvTransferConfig { KvRole = "kv_consumer", EngineId = "decode-0", KvLoadFailurePolicy = "recompute" };
        using var pair = new PdPair("fortune-chat", consumer: consumer);
        var remote = await pair.Prefill("r", G.PromptIds);
        pair.DisposeProducer();
        var output = await pair.Decode("r", G.PromptIds, G.OutputIds.Length, remote);
        Assert.Equal(G.OutputIds, output.Outputs[0].TokenIds);
        await PdPair.WaitIdle(pair.Consumer);
    }

    [Fact]
    public async Task AnotherEnginesIdIsRefused()
    {
        using var pair = new PdPair("fortune-chat");
        var remote = await pair.Prefill("r", G.PromptIds);
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => pair.Decode("r", G.PromptIds, 8, remote! with { RemoteEngineId = "someone-else" }));
        Assert.Equal(KvPullStatus.UnknownEngine, Assert.IsType<KvTransferException>(e.InnerException).Status);
        // The right engine id still finds the blocks: a refused pull does not end the hold.
        var output = await pair.Decode("r2", G.PromptIds, G.OutputIds.Length, remote);
        Assert.Equal(G.OutputIds, output.Outputs[0].TokenIds);
        await PdPair.WaitIdle(pair.Producer);
        await PdPair.WaitIdle(pair.Consumer);
    }

    [Fact]
    public async Task ADecodeOfAnotherPromptOfTheSameLengthIsRefused()
    {
        using var pair = new PdPair("fortune-chat");
        var remote = await pair.Prefill("r", G.PromptIds);
        int[] other = [.. G.PromptIds[..^1], G.PromptIds[^1] == 5 ? 6 : 5];
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => pair.Decode("r", other, 8, remote));
        Assert.Equal(KvPullStatus.PromptMismatch, Assert.IsType<KvTransferException>(e.InnerException).Status);
        await PdPair.WaitIdle(pair.Consumer);
    }

    [Fact]
    public async Task RequestsTheRoleDoesNotServeAreRejected()
    {
        using var pair = new PdPair("fortune-chat");
        var remote = await pair.Prefill("r", G.PromptIds);
        // A prefill on the consumer, a decode on the producer: neither instance has that role.
        var onConsumer = Assert.ThrowsAsync<ArgumentException>(() => PdPair.Prefill(pair.Consumer, "x", G.PromptIds));
        Assert.Contains("needs a KV producer", (await onConsumer).Message);
        var wrongPrompt = await Assert.ThrowsAsync<ArgumentException>(() => pair.Decode("y", G.PromptIds[..^1], 8, remote));
        Assert.Contains("same prompt", wrongPrompt.Message);
    }
}

/// <summary>A stand-in producer on loopback: takes one pull, then stalls until told what to send before closing.</summary>
internal sealed class FakeProducer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly TaskCompletionSource<(byte[] Header, int PayloadBytes)> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _serving;

    public TaskCompletionSource<KvPullRequest> Pulled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FakeProducer()
    {
        _listener.Start();
        _serving = Task.Run(Serve);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public KvTransferParams Params(int numTokens, int[] blockIds) => new()
    {
        DoRemotePrefill = true, RemoteEngineId = "prefill-fake", RemoteRequestId = "cmpl-fake", RemoteBlockIds = blockIds,
        RemoteHost = "127.0.0.1", RemotePort = Port, RemoteNumTokens = numTokens,
    };

    /// <summary>Sends the header and this many bytes of zeros, then closes the connection.</summary>
    public void Finish(byte[] header, int payloadBytes) => _reply.TrySetResult((header, payloadBytes));

    private async Task Serve()
    {
        using var client = await _listener.AcceptTcpClientAsync();
        var stream = client.GetStream();
        Pulled.TrySetResult(await KvTransferWire.ReadRequestAsync(stream, CancellationToken.None));
        // Either the test says what to send, or the consumer hangs up first (a read returns 0 bytes).
        var hangUp = stream.ReadAsync(new byte[1]).AsTask();
        if (await Task.WhenAny(_reply.Task, hangUp) == _reply.Task)
        {
            var (header, payload) = _reply.Task.Result;
            await stream.WriteAsync(header);
            await stream.WriteAsync(new byte[payload]);
            await stream.FlushAsync();
        }
        else
            Closed.TrySetResult();
    }

    public void Dispose()
    {
        _reply.TrySetResult(([], 0));
        _listener.Stop();
        try
        {
            _serving.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }
}
