using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Distributed;
using Pagoda.Engine;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Distributed;

/// <summary>
/// Tensor parallelism on a device backend, as far as the CPU can check it: a device without collectives refuses a group
/// with the reason, and a worker builds its shard through the job's provider (its node's device of its rank, the
/// collectives from rank 0's id, prepared for rank 0's execution shape), and a device that samples takes the GPU form's
/// path over two ranks. NCCL itself needs GPUs.
/// </summary>
[Collection("tensor-parallel workers")]
public class DeviceTensorParallelTests
{
    [Fact]
    public void ADeviceWithoutCollectivesRefusesAGroupWithTheReason()
    {
        var device = new DeferredDevice(asynchronous: false);
        var e = Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs
        {
            Model = TestPaths.Model("fortune-chat"), TensorParallelSize = 2, Device = device.Device, BackendProviders = [device],
            WorkerCommand = TensorParallelTests.Worker,
        }));
        Assert.Equal($"--tensor-parallel-size above 1 is not supported on --device {device.Device}.", e.Message);
    }

    [Fact]
    public async Task AWorkerBuildsItsShardThroughTheJobsDeviceAndPreparesItAsRankZeroDoes()
    {
        using var group = SharedMemoryGroup.Create(2);
        var device = new RecordingDevice();
        var shape = new ExecutionShape(7, 256, false, 4);
        var job = new WorkerJob(TestPaths.Model("fortune-chat"), "auto", "auto", null, 256, 8, 16, new BackendOptions { CpuThreads = 1 },
            TensorParallelWorker.ConfigSha256(TestPaths.Model("fortune-chat")), device.Device, "rank-0-id", shape, RanksPerNode: 1);
        group.Post(BatchMessage.Job, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(job));
        var error = new StringWriter();
        var worker = Task.Run(() => TensorParallelWorker.Run(() => SharedMemoryGroup.Join(group.Path, 1, 2), 1, Environment.ProcessId, null, error, [device]));
        group.WaitUntil(() => group.StateOf(1) != 0 || worker.IsCompleted, idle: true);
        group.Post(BatchMessage.Shutdown, []);
        int code = await worker.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("", error.ToString());
        Assert.Equal(0, code);
        Assert.Equal(["backend on device 0", "collectives rank 1 of 2 from rank-0-id", $"prepare {shape}"], device.Log);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RankZeroOfADeviceSamplesTheGatheredLogitsAsOneRankDoes(bool deferred)
    {
        // The GPU form's path without NCCL: every rank prepares through the device, rank 0 gathers the head's logits into
        // a tensor of its backend and reduces them there (the reference sampling device) or, on a device whose prepared
        // forwards return before they run (as graph replays do), runs them when the engine waits, after posting the
        // batch; the worker's forward ends at the collectives. The worker rank runs in this process: its process only
        // hands over its arguments and waits.
        IBackendProvider single = deferred ? new DeferredDevice() : new ReferenceSamplingDevice();
        var device = new CollectivesDevice(deferred ? new DeferredDevice() : new ReferenceSamplingDevice());
        string handover = Path.Combine(Path.GetTempPath(), $"pagoda-tp-args-{Guid.NewGuid():N}");
        string[] command = ["sh", "-c", $"echo \"$@\" > {handover}.tmp && mv {handover}.tmp {handover}; while [ -f {handover} ]; do sleep 0.05; done", "sh"];
        var error = new StringWriter();
        var worker = Task.Run(async () =>
        {
            while (!File.Exists(handover))
                await Task.Delay(20);
            var words = File.ReadAllText(handover).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            string Arg(string name) => words[Array.IndexOf(words, name) + 1];
            try
            {
                return TensorParallelWorker.Run(() => SharedMemoryGroup.Join(Arg("--group"), int.Parse(Arg("--rank")), int.Parse(Arg("--size"))),
                    int.Parse(Arg("--rank")), null, null, error, [device]);
            }
            finally
            {
                File.Delete(handover);   // its process exits
            }
        });
        var cases = Golden.Cases("fortune-chat").Select(c => Golden.Load("fortune-chat", (string)c[0], (int)c[1])).ToList();
        List<RequestOutput> Run(IBackendProvider provider, int size)
        {
            using var llm = new LLM(new EngineArgs
            {
                Model = TestPaths.Model("fortune-chat"), Device = provider.Device, BackendProviders = [provider], TensorParallelSize = size,
                WorkerCommand = command, NumKvBlocks = 64, MaxModelLen = 512,
            });
            var prompts = cases.Select(c => PromptInput.FromTokenIds(c.PromptIds)).ToList();
            return [.. llm.Generate(prompts, cases.Select(c => new SamplingParams { Temperature = 0, MaxTokens = c.OutputIds.Length, StopTokenIds = [8192, 8194], Logprobs = 5 }).ToList()),
                .. llm.Generate(prompts.Take(2).ToList(), new SamplingParams { Temperature = 0.8, TopP = 0.9, Seed = 7, MaxTokens = 16, IgnoreEos = true })];
        }
        var one = Run(single, 1);
        var two = Run(device, 2);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("", error.ToString());
        if (device.Inner is ReferenceSamplingDevice sampling)
            Assert.True(sampling.Reduced > 0, "rank 0 did not reduce the gathered logits on its device");
        if (device.Inner is DeferredDevice later)   // rank 0's forwards ran when waited for, and the worker's (same device) too
            Assert.Contains("wait", later.Log);
        for (int i = 0; i < one.Count; i++)
        {
            var (a, b) = (one[i].Outputs[0], two[i].Outputs[0]);
            Assert.Equal(a.TokenIds, b.TokenIds);
            if (i < cases.Count)
            {
                Assert.Equal(cases[i].OutputIds, b.TokenIds);
                for (int s = 0; s < a.Logprobs!.Count; s++)
                    Assert.True(Math.Abs(a.Logprobs[s].Logprob - b.Logprobs![s].Logprob) <= 1e-4, $"{cases[i]} step {s}: against size 1");
            }
        }
    }

    // A device with collectives over the group (the CPU's), so that its ranks take the device's path.
    private sealed class CollectivesDevice(IBackendProvider inner) : IBackendProvider
    {
        public IBackendProvider Inner => inner;

        public string Device => "collectives-" + inner.Device;

        public bool AutoSelect => false;

        public bool IsAvailable(out string reason) => inner.IsAvailable(out reason);

        public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex) =>
            inner.CreateBackend(args, config, maxModelLen, deviceIndex);

        public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen) =>
            inner.KvCacheBlocks(backend, args, config, kvWidth, maxModelLen);

        public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape) => inner.Prepare(model, backend, cache, shape);

        public string NewCollectivesId() => "group";

        public ICommunicator CreateCommunicator(IBackend backend, ITensorParallelGroup group, string collectivesId) => group.Communicator();
    }

    // A CPU backend standing in for a device with collectives: it records what the worker asks of it.
    private sealed class RecordingDevice : IBackendProvider
    {
        public List<string> Log { get; } = [];

        public string Device => "recording-cpu";

        public bool AutoSelect => false;

        public bool IsAvailable(out string reason)
        {
            reason = "";
            return true;
        }

        public IBackend CreateBackend(EngineArgs args, ModelConfig config, int maxModelLen, int deviceIndex)
        {
            Log.Add($"backend on device {deviceIndex}");
            return new CpuBackend(args.ResolvedBackendOptions());
        }

        public int KvCacheBlocks(IBackend backend, EngineArgs args, ModelConfig config, int kvWidth, int maxModelLen) => 8;

        public ICommunicator CreateCommunicator(IBackend backend, ITensorParallelGroup group, string collectivesId)
        {
            Log.Add($"collectives rank {group.RankIndex} of {group.Size} from {collectivesId}");
            return group.Communicator();
        }

        public IModel Prepare(IModel model, IBackend backend, PagedKvCache cache, ExecutionShape shape)
        {
            Log.Add($"prepare {shape}");
            return model;
        }
    }
}
