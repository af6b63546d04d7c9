using System.Net;
using System.Net.Sockets;
using Pagoda.Backends.Cpu;
using Pagoda.Distributed;
using Pagoda.Engine;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Distributed;

/// <summary>
/// Tensor parallelism over several nodes (vLLM's --nnodes, --node-rank, --master-addr, --master-port, --headless),
/// rehearsed on this host: node 0 is the engine, node 1 a headless node run in this process; their ranks meet over TCP.
/// The collectives give the shared-memory group's bits, the goldens hold, and a node that never comes, one that
/// disagrees on the group or the model, and one that dies mid-step each end with a message instead of a hang.
/// </summary>
[Collection("tensor-parallel workers")]
public class MultiNodeTests
{
    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static EngineArgs Node0(string model, int tp = 2, int port = 0) => new()
    {
        Model = TestPaths.Model(model), TensorParallelSize = tp, Nnodes = 2, MasterPort = port == 0 ? FreePort() : port,
        WorkerCommand = TensorParallelTests.Worker, TensorParallelJoinTimeout = TimeSpan.FromSeconds(60),
    };

    // Node 1's ranks, in this process (its first) and in tp-worker processes (the others), until rank 0 ends the group.
    private static Background Headless(EngineArgs node0, StringWriter log, string? model = null, int? tp = null) =>
        new(() => HeadlessNode.Run(node0 with { NodeRank = 1, Model = model ?? node0.Model, TensorParallelSize = tp ?? node0.TensorParallelSize }, log));

    // A thread of this process standing for another process (a node, a rank), and its exit code.
    private sealed class Background
    {
        private readonly Thread _thread;
        private Exception? _error;

        public Background(Func<int> run)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    Result = run();
                }
                catch (Exception e)
                {
                    _error = e;
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public int Result { get; private set; }

        public bool Wait(TimeSpan timeout) => _thread.Join(timeout) && (_error == null ? true : throw _error);
    }

    [Fact]
    public void TcpCollectivesGiveTheSharedMemoryGroupsBits()
    {
        // Three ranks: an all-reduce of values whose sum depends on the order, and a gather of unequal widths.
        const int size = 3, rows = 3;
        float[][] inputs = [.. Enumerable.Range(0, size).Select(r => Enumerable.Range(0, rows * 1000).Select(i => MathF.Sin(i * (r + 1)) * MathF.Pow(10, (i + r) % 7 - 3)).ToArray())];
        int[] widths = [5, 4, 2];
        var results = new float[size][];
        var gathered = new float[rows * widths.Sum()];
        using var g0 = TcpGroup.Listen("127.0.0.1", 0, size, TimeSpan.FromSeconds(30));
        var workers = Enumerable.Range(1, size - 1).Select(r => new Background(() =>
        {
            using var g = TcpGroup.Connect("127.0.0.1", g0.Port, r, size, TimeSpan.FromSeconds(30));
            g.ReportReady();
            Collect(g.Communicator(), r);
            return 0;
        })).ToArray();
        g0.WaitUntil(() => Enumerable.Range(1, size - 1).All(r => g0.StateOf(r) == 1), idle: true);
        Collect(g0.Communicator(), 0);
        Assert.All(workers, w => Assert.True(w.Wait(TimeSpan.FromSeconds(30))));

        void Collect(ICommunicator comm, int rank)
        {
            using var x = CpuTensor.Allocate([rows, 1000]);
            inputs[rank].CopyTo(x.F32);
            comm.AllReduce(x);
            results[rank] = x.F32.ToArray();
            using var p = CpuTensor.Allocate([rows, widths[rank]]);
            for (int i = 0; i < rows * widths[rank]; i++)
                p.F32[i] = rank * 100f + i;
            using var whole = rank == 0 ? CpuTensor.Allocate([rows, widths.Sum()]) : null;
            comm.GatherColumns(p, whole);
            whole?.F32.CopyTo(gathered);
        }

        var expected = (float[])inputs[0].Clone();
        for (int r = 1; r < size; r++)
            Vec.AddScaled(inputs[r], 1f, expected);   // the shared-memory communicator's order
        for (int r = 0; r < size; r++)
            Assert.Equal(expected, results[r]);
        for (int i = 0, col = 0; i < size; col += widths[i], i++)
            for (int row = 0; row < rows; row++)
                for (int c = 0; c < widths[i]; c++)
                    Assert.Equal(i * 100f + row * widths[i] + c, gathered[row * widths.Sum() + col + c]);
    }

    [Theory]
    [InlineData("fortune-chat", 2)]
    [InlineData("fortune-chat", 4)]   // two ranks a node: each node starts a tp-worker beside its first rank
    [InlineData("tiny-qwen3-moe", 2)]
    public void GoldensOverTwoNodes(string model, int tp)
    {
        var node0 = Node0(model, tp);
        var log = new StringWriter();
        var node1 = Headless(node0, log);
        var cases = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1])).ToList();
        var sampling = cases.Select(c => new SamplingParams { Temperature = 0, MaxTokens = c.OutputIds.Length, StopTokenIds = [8192, 8194], Logprobs = 1 }).ToList();
        var prompts = cases.Select(c => PromptInput.FromTokenIds(c.PromptIds)).ToList();
        List<RequestOutput> single, parallel;
        using (var llm = new LLM(new EngineArgs { Model = node0.Model }))
            single = [.. llm.Generate(prompts, sampling)];
        using (var llm = new LLM(node0))
            parallel = [.. llm.Generate(prompts, sampling)];
        Assert.True(node1.Wait(TimeSpan.FromSeconds(30)), "the headless node did not end with rank 0");
        Assert.True(node1.Result == 0, log.ToString());
        for (int i = 0; i < cases.Count; i++)
        {
            var (c, one, two) = (cases[i], single[i].Outputs[0], parallel[i].Outputs[0]);
            Assert.True(c.OutputIds.SequenceEqual(two.TokenIds), $"{c}: ids differ from the golden");
            for (int s = 0; s < c.Steps.Length; s++)
                Assert.True(Math.Abs(one.Logprobs![s].Logprob - two.Logprobs![s].Logprob) <= 1e-4, $"{c} step {s}: against size 1");
        }
    }

    [Fact]
    public void ANodeThatNeverComesEndsTheWaitWithHowToStartIt()
    {
        var args = Node0("fortune-chat") with { TensorParallelJoinTimeout = TimeSpan.FromSeconds(2) };
        var e = Assert.Throws<TensorParallelException>(() => new LLM(args));
        Assert.Equal($"tensor-parallel rank 1 did not join rank 0 at 127.0.0.1:{args.MasterPort} within 2 s (start the other nodes with "
            + "--headless --nnodes, --node-rank, --master-addr and --master-port).", e.Message);
    }

    [Fact]
    public void ANodeThatDisagreesOnTheGroupOrTheModelIsRefused()
    {
        var args = Node0("fortune-chat");
        var log = new StringWriter();
        // Its ranks that find rank 0 gone keep trying for their join time: a short one here.
        var wrongSize = Headless(args with { TensorParallelJoinTimeout = TimeSpan.FromSeconds(3) }, log, tp: 4);
        var e = Assert.Throws<TensorParallelException>(() => new LLM(args));
        Assert.Equal("a rank joined as one of 4 ranks; rank 0 has --tensor-parallel-size 2.", e.Message);
        Assert.True(wrongSize.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(1, wrongSize.Result);
        Assert.Contains("a rank joined as one of 4 ranks", log.ToString());

        args = Node0("fortune-chat");
        var otherModel = Headless(args, new StringWriter(), model: TestPaths.Model("tiny-llama"));
        e = Assert.Throws<TensorParallelException>(() => new LLM(args));
        Assert.Equal($"tensor-parallel worker 1 failed: this rank's {Path.Combine(TestPaths.Model("tiny-llama"), "config.json")} differs from rank 0's.", e.Message);
        Assert.True(otherModel.Wait(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void ANodeThatDiesFailsTheStepAndRankZerosEndEndsTheNode()
    {
        // Node 1's rank in a tp-worker process of its own, killed between requests.
        var args = Node0("fortune-chat");
        var info = new System.Diagnostics.ProcessStartInfo(TensorParallelTests.Worker[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in TensorParallelTests.Worker.Skip(1).Concat(["--master-addr", "127.0.0.1", "--master-port", $"{args.MasterPort}", "--rank", "1", "--size", "2"]))
            info.ArgumentList.Add(a);
        using var worker = System.Diagnostics.Process.Start(info)!;
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = 8 };
        using (var llm = new LLM(args))
        {
            Assert.Single(llm.Generate(["Tell me a fortune."], [sampling]));
            worker.Kill();
            worker.WaitForExit();
            var e = Assert.Throws<TensorParallelException>(() => llm.Generate(["Another fortune, please."], [sampling]));
            Assert.Equal("tensor-parallel worker 1 closed its connection (it exited or its node is gone).", e.Message);
        }

        // Rank 0 going away ends a node's ranks.
        args = Node0("fortune-chat");
        var node1 = Headless(args, new StringWriter());
        var llm2 = new LLM(args);
        Assert.Single(llm2.Generate(["Tell me a fortune."], [sampling]));
        llm2.Dispose();
        Assert.True(node1.Wait(TimeSpan.FromSeconds(30)), "the node outlived rank 0");
        Assert.Equal(0, node1.Result);
    }

    [Fact]
    public void StrangersOnThePortNeitherHoldUpNorFoolTheGroup()
    {
        // A connection to rank 0 that says nothing does not keep a real rank from joining.
        using var g0 = TcpGroup.Listen("127.0.0.1", 0, 2, TimeSpan.FromSeconds(30));
        using var silent = new TcpClient("127.0.0.1", g0.Port);
        var worker = new Background(() =>
        {
            using var g = TcpGroup.Connect("127.0.0.1", g0.Port, 1, 2, TimeSpan.FromSeconds(30));
            g.ReportReady();
            return 0;
        });
        g0.WaitUntil(() => g0.StateOf(1) == 1, idle: true);
        Assert.True(worker.Wait(TimeSpan.FromSeconds(30)));

        // A rank that reaches something else: a huge frame is refused, not allocated; silence ends at the join time.
        var other = new TcpListener(IPAddress.Loopback, 0);
        other.Start();
        int port = ((IPEndPoint)other.LocalEndpoint).Port;
        var serve = new Background(() =>
        {
            using (var c = other.AcceptTcpClient())
                c.GetStream().Write([19, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]);   // a data frame of 2 GiB - 1
            using var quiet = other.AcceptTcpClient();
            Thread.Sleep(3000);
            return 0;
        });
        using (var g = TcpGroup.Connect("127.0.0.1", port, 1, 2, TimeSpan.FromSeconds(30)))
            Assert.Equal("a frame of 2147483647 bytes: the peer is not a Pagoda rank of this group.", Assert.Throws<TensorParallelException>(() => g.Receive(out _)).Message);
        using (var g = TcpGroup.Connect("127.0.0.1", port, 1, 2, TimeSpan.FromSeconds(1)))
            Assert.Equal($"127.0.0.1:{port} sent no job within 1 s: is it a Pagoda rank 0?", Assert.Throws<TensorParallelException>(() => g.Receive(out _)).Message);
        Assert.True(serve.Wait(TimeSpan.FromSeconds(30)));
        other.Stop();
    }

    [Fact]
    public void AMasterAddressThatCannotBeUsedIsNamed()
    {
        var e = Assert.Throws<TensorParallelException>(() => new LLM(Node0("fortune-chat") with { MasterAddr = "no-such-host.invalid" }));
        Assert.StartsWith("rank 0 cannot listen at no-such-host.invalid:", e.Message);
    }

    [Theory]
    [InlineData("node 1 of a multi-node group runs only workers: start it with `pagoda serve MODEL --headless`.", 2, 1)]
    [InlineData("--tensor-parallel-size 3 does not split evenly over --nnodes 2.", 3, 0)]
    [InlineData("--node-rank must be between 0 and --nnodes - 1 (node 2 of 2).", 2, 2)]
    public void NodeFlagsThatCannotWorkAreRefused(string message, int tp, int nodeRank)
    {
        var e = Assert.Throws<ArgumentException>(() => new LLM(Node0("fortune-chat", tp) with { NodeRank = nodeRank }));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void TheCliRunsAHeadlessNodeForAnotherNodesEngine()
    {
        // Two programs as two nodes would run them: `serve --headless` on node 1, `generate` on node 0; a seeded sampled
        // request gives what one process gives.
        string model = TestPaths.Model("fortune-chat");
        string[] sampled = ["--prompt", "Tell me a fortune.", "--temperature", "0.8", "--seed", "7", "--max-tokens", "24", "--ignore-eos"];
        string port = $"{FreePort()}";
        string[] nodes = ["--tensor-parallel-size", "2", "--nnodes", "2", "--master-port", port];
        var headless = Cli(["serve", model, "--device", "cpu", "--headless", "--node-rank", "1", .. nodes]);
        var (code, one, _) = Wait(Cli(["generate", "--model", model, "--device", "cpu", .. sampled]));
        Assert.Equal(0, code);
        var (code2, two, err2) = Wait(Cli(["generate", "--model", model, "--device", "cpu", .. nodes, .. sampled]));
        Assert.True(code2 == 0, err2);
        Assert.Contains("Output:", one);
        Assert.Equal(one, two);
        var (code1, _, err1) = Wait(headless);
        Assert.True(code1 == 0, err1);
        Assert.Contains($"node 1 of 2: ranks 1 to 1 of 2 joining rank 0 at 127.0.0.1:{port}", err1);

        // The flags' misuses, one line each.
        Assert.Equal("error: --headless runs a node's tensor-parallel ranks under `pagoda serve` only.",
            Wait(Cli(["generate", "--model", model, "--headless", "--prompt", "x"])).Err.Trim());
        Assert.Equal("error: --headless runs a node after the first of a multi-node group: --nnodes above 1 and --node-rank from 1 (got node 0 of 1).",
            Wait(Cli(["serve", model, "--device", "cpu", "--headless"])).Err.Trim());
        var (badCode, _, badErr) = Wait(Cli(["generate", "--model", model, "--device", "cpu", "-tp", "2", "--nnodes", "2", "--master-addr", "no-such-host.invalid", "--prompt", "x"]));
        Assert.Equal(1, badCode);
        Assert.StartsWith("error: rank 0 cannot listen at no-such-host.invalid:29501:", badErr.Trim());
        Assert.Single(badErr.Trim().Split('\n'));   // one line, no stack trace
    }

    private static System.Diagnostics.Process Cli(string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(TensorParallelTests.Worker[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { TensorParallelTests.Worker[1] }.Concat(args))
            info.ArgumentList.Add(a);
        return System.Diagnostics.Process.Start(info)!;
    }

    private static (int Code, string Out, string Err) Wait(System.Diagnostics.Process p)
    {
        using (p)
        {
            var err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(120_000), "the program did not exit");
            return (p.ExitCode, output, err.GetAwaiter().GetResult());
        }
    }
}
