using System.Diagnostics;
using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Distributed;
using Pagoda.Execution;
using Pagoda.KvCache;
using Pagoda.KvEvents;
using Pagoda.Loading;
using Pagoda.Loading.Hub;
using Pagoda.Models;
using Pagoda.Requests;
using Pagoda.Scheduling;
using Pagoda.SpecDecode;
using Pagoda.StructuredOutput;
using Pagoda.Tokenization;

namespace Pagoda.Engine;

/// <summary>
/// vLLM's engine: AddRequest queues work, Step runs one scheduled forward over every running request
/// (continuous batching with chunked prefill) and returns the outputs it produced, Abort ends a request
/// and frees its blocks at once. Single-threaded: one caller drives it (see <see cref="AsyncLLMEngine"/>).
/// </summary>
public sealed partial class LLMEngine : IDisposable
{
    private readonly WeightStore _weights;
    private readonly IBackend _backend;
    private readonly IModel _model;
    private readonly Tokenizer? _tokenizer;
    private readonly ModelRunner _runner;
    private readonly Scheduler _scheduler;
    private readonly OutputProcessor _output;
    private readonly Random _seeds;
    private readonly HashSet<int> _eosIds;
    private readonly List<RequestFailure> _failures = [];
    private readonly IKvEventPublisher _kvEvents;
    private readonly Action<string> _warn;
    private long _promptTokens, _generationTokens, _firstTokens;
    private (SchedulerOutput Scheduled, ModelRunnerOutput Run)? _deferred;
    // Made on the first structured request (the vocabulary's trie takes a moment); the second one, sharing the
    // vocabulary, compiles JSON without whitespace (disable_any_whitespace).
    private GrammarCompiler? _grammars, _compactGrammars;
    private readonly Lock _grammarsLock = new();
    private readonly int? _reasoningStart, _reasoningEnd; // <think> and </think> of a reasoning model's tokenizer

    /// <summary>Loads the model, tokenizer and chat template named by <paramref name="args"/> and sizes the KV pool.</summary>
    public LLMEngine(EngineArgs args)
    {
        args.Validate();
        if (args.DataParallelSize > 1)
            throw new ArgumentException($"--data-parallel-size {args.DataParallelSize} runs replicas behind `pagoda serve`; offline generation runs one engine.");
        Args = args;
        // A repo id is fetched through the hub cache (args.Revision, args.DownloadDir) before the folder is read.
        Folder = ModelFolder.Open(ModelResolver.Resolve(args.Model, args.Revision, args.DownloadDir,
            args.Hub ?? HubSettings.FromEnvironment(), args.DownloadProgress));
        var warn = _warn = args.Warn ?? (message => Console.Error.WriteLine($"WARNING {message}"));
        // The one quantized format read is gpt-oss's MXFP4 experts, decoded to bfloat16 at load; dummy weights are made
        // unquantized.
        bool mxfp4 = IsMxfp4(Folder.Config);
        if (Folder.Config.QuantizationMethod is { } quant)
        {
            if (args.LoadFormat == "dummy")
                warn($"config.json declares {quant} quantization; the dummy weights are unquantized, so memory and speed are not the quantized model's.");
            else if (!mxfp4)
                throw new ModelLoadException(Path.Combine(Folder.Path, "config.json"), ConfigReader.UnsupportedQuantization(quant));
            else
                warn("MXFP4 experts are decoded to bfloat16 at load (vLLM computes with them packed): they take four times the checkpoint's memory.");
        }
        _tokenizer = args.SkipTokenizerInit ? null : Tokenizer.FromFolder(args.Tokenizer ?? Folder.Path);
        ChatTemplate = args.SkipTokenizerInit ? null : ChatTemplate.FromFolder(args.Tokenizer ?? Folder.Path, args.ChatTemplate);
        GenerationConfig = args.GenerationConfig switch
        {
            "auto" => Folder.GenerationConfig,
            "vllm" => GenerationConfig.Empty,
            var dir => GenerationConfig.Read(Path.Combine(dir, "generation_config.json")),
        };
        MaxModelLen = args.MaxModelLen ?? Folder.Config.MaxPositionEmbeddings;
        if (MaxModelLen > Folder.Config.MaxPositionEmbeddings)
            throw new ArgumentException(
                $"--max-model-len {MaxModelLen} exceeds the model's max_position_embeddings ({Folder.Config.MaxPositionEmbeddings}).");

        _eosIds = [.. GenerationConfig.EosTokenIds];
        if (args.GenerationConfig == "auto" && _eosIds.Count == 0)
            _eosIds.UnionWith(Folder.Config.EosTokenIds);
        if (_tokenizer?.EosTokenId is int eos)
            _eosIds.Add(eos);
        _seeds = new Random(unchecked((int)args.Seed));

        var provider = BackendProviders.Resolve(args.Device, args.BackendProviders);
        if (args.TensorParallelSize > 1 && provider != null)
            throw new ArgumentException($"--tensor-parallel-size {args.TensorParallelSize} runs on the CPU backend only (--device cpu): "
                + "the GPU form needs NCCL, which Pagoda does not bind yet.");
        var group = TensorParallelWorkers.CreateGroup(args, MaxModelLen);
        var backendOptions = args.ResolvedBackendOptions();
        if (group != null && backendOptions.CpuThreads == null)   // the ranks share the cores
            backendOptions = backendOptions with { CpuThreads = Math.Max(1, backendOptions.NumCpuThreads / args.RanksPerNode) };
        _backend = provider?.CreateBackend(args, Folder.Config, MaxModelLen) ?? new CpuBackend(backendOptions);
        _weights = null!;
        try
        {
            _weights = OpenWeights(Folder, args.LoadFormat, args.DType);
            _model = ModelRegistry.Create(Folder.Config, _weights, _backend, args.Quantization, MaxModelLen, group?.Communicator());
            _weights.ReleaseDecodedMxfp4();   // the model holds its own copies of the decoded experts
            var draft = LoadDraft(args, _backend, Folder.Config, MaxModelLen);
            // The draft's pool has as many blocks as the target's: its bytes per block share the memory.
            long targetBytes = (long)Folder.Config.NumLayers * _model.KvWidth, draftBytes = draft is var (dm, _) ? (long)dm.Config.NumLayers * dm.KvWidth : 0;
            int? blocks = provider?.KvCacheBlocks(_backend, args, Folder.Config, _model.KvWidth, MaxModelLen) is int b ? (int)(b * targetBytes / (targetBytes + draftBytes)) : null;
            KvCacheInfo = SizeKvCache(args, _model.KvWidth, Folder.Config.NumLayers, MaxModelLen, blocks, KvCacheSlidingWindow(Folder.Config, MaxModelLen),
                (double)(targetBytes + draftBytes) / targetBytes);
            var cache = _backend.AllocateKvCache(Folder.Config.NumLayers, KvCacheInfo.NumBlocks, args.BlockSize, _model.KvWidth);
            if (group != null)
            {
                var job = new WorkerJob(Folder.Path, args.LoadFormat, args.DType, args.Quantization, MaxModelLen, KvCacheInfo.NumBlocks, args.BlockSize,
                    backendOptions, TensorParallelWorker.ConfigSha256(Folder.Path));
                _model = new TensorParallelModel(_model, TensorParallelWorkers.Start(group, args.RanksPerNode, job, args.WorkerCommand));
                group = null;   // the model owns it now
            }
            if (draft is var (draftModel, draftWeights))
                _draft = CreateDraft(args, provider, draftModel, draftWeights);
            _model = provider?.Prepare(_model, _backend, cache, args, MaxModelLen) ?? _model;
            _runner = new ModelRunner(_model, cache, (_backend as IDeviceSampler)?.MaxCandidates ?? 0, args.FaultHook);
        }
        catch
        {
            _draft?.Dispose();
            _model?.Dispose();
            group?.Dispose();
            _weights?.Dispose();
            _backend.Dispose();
            throw;
        }
        bool kvEvents = args.KvEventsConfig?.EnableKvCacheEvents == true;
        var kv = new KvCacheManager(KvCacheInfo.NumBlocks, args.BlockSize, args.EnablePrefixCaching, kvEvents, KvCacheInfo.SlidingWindow);
        _spec = args.SpeculativeConfig is { } spec ? new SpecDecoder(spec, MaxModelLen) : null;
        _scheduler = new Scheduler(new SchedulerConfig(args.MaxNumBatchedTokens, args.MaxNumSeqs, MaxModelLen, _draft != null ? _spec!.Config.NumSpeculativeTokens : 0), kv);
        _output = new OutputProcessor(_tokenizer, args.FaultHook);
        if (args.ReasoningParser != null && _tokenizer != null)
            (_reasoningStart, _reasoningEnd) = (_tokenizer.TokenToId("<think>"), _tokenizer.TokenToId("</think>"));
        if (kvEvents && !args.EnablePrefixCaching)
            warn("KV cache events are on, but prefix caching is not: no events will be published (drop --no-enable-prefix-caching).");
        try
        {
            _kvEvents = KvEventPublishers.Create(args.KvEventsConfig, warn, args.DataParallelRank);
            _connector = CreateKvConnector(args.KvTransferConfig, _runner.Cache, warn);
        }
        catch
        {
            _kvEvents?.Dispose();
            DisposeModel();
            throw;
        }
    }

    /// <summary>The options this engine was built with.</summary>
    public EngineArgs Args { get; }

    /// <summary>The model folder and its configs.</summary>
    public ModelFolder Folder { get; }

    /// <summary>The model's tokenizer.</summary>
    public Tokenizer Tokenizer => _tokenizer ?? throw new InvalidOperationException("No tokenizer was loaded (--skip-tokenizer-init).");

    /// <summary>Bytes of the weights the model computes with (int8 copies replacing what they quantized).</summary>
    public long WeightBytes => _model.WeightBytes;

    /// <summary>Worker threads of the CPU kernels.</summary>
    public int NumThreads => _backend is CpuBackend cpu ? cpu.NumThreads : 1;

    /// <summary>Whether a tokenizer was loaded (false under --skip-tokenizer-init).</summary>
    public bool HasTokenizer => _tokenizer != null;

    /// <summary>The model's chat template, if it has one.</summary>
    public ChatTemplate? ChatTemplate { get; }

    /// <summary>The generation config in force (empty under `--generation-config vllm`).</summary>
    public GenerationConfig GenerationConfig { get; }

    /// <summary>Longest prompt + output.</summary>
    public int MaxModelLen { get; }

    /// <summary>The KV pool's size.</summary>
    public KvCacheInfo KvCacheInfo { get; }

    /// <summary>The backend running the model (cpu, cuda).</summary>
    public IBackend Backend => _backend;

    /// <summary>Ids that end a sequence unless IgnoreEos.</summary>
    public IReadOnlySet<int> EosTokenIds => _eosIds;

    /// <summary>Whether any request is waiting or running.</summary>
    public bool HasUnfinishedRequests => _scheduler.HasUnfinishedRequests || _output.NumUnfinished > 0 || _deferred != null;

    /// <summary>The KV bookkeeping (for tests and metrics).</summary>
    public KvCacheManager KvCacheManager => _scheduler.KvCache;

    /// <summary>Where step time goes (schedule, build, forward, sample, update), cumulatively.</summary>
    public StepTimings Timings => _runner.Timings;

    /// <summary>Load counters.</summary>
    public EngineStats Stats => new(_scheduler.NumRunning, _scheduler.NumWaiting, _scheduler.KvCache.Usage,
        _scheduler.KvCache.PrefixCacheStats, _scheduler.NumPreemptions, _promptTokens, _generationTokens)
    {
        NumFirstTokens = _firstTokens, SpecDecoding = _spec?.Stats,
    };

    /// <summary>
    /// Ends a request (all its sequences) and frees its blocks (a pull still writing them frees them when it stops);
    /// unknown ids are ignored.
    /// </summary>
    public void Abort(string requestId)
    {
        var children = _output.Children(requestId);
        AbortKvTransfers(children);
        _scheduler.FinishRequests(children, RequestStatus.FinishedAborted);
        _output.Remove(requestId);
        _kvTransferOutputs.Remove(requestId);
        _stalled = false;
    }

    /// <summary>
    /// Schedules, runs and samples one step; returns the outputs it produced. A request whose own processing
    /// throws (batch preparation, sampling, detokenization) is ended and its blocks freed; it is reported by
    /// <see cref="TakeFailures"/> while the others go on. A failing forward fails the requests of its batch.
    /// </summary>
    /// <remarks>
    /// When the model's forward runs asynchronously (CUDA graph replays), a step's outputs come from the next
    /// call (vLLM's async scheduling, in a light form): the scheduler records step n at once (tokens, EOS,
    /// max_tokens, stop token ids, freed blocks), but detokenization, stop strings and building outputs for
    /// step n run while the device computes step n+1. A request a stop string ends there may already be in
    /// step n+1: it is finished then and its token of step n+1 dropped. Freeing its blocks while the forward
    /// still writes them is safe because blocks are only handed out again by the next Schedule, after the wait.
    /// </remarks>
    public IReadOnlyList<RequestOutput> Step()
    {
        try
        {
            return StepOnce();
        }
        finally
        {
            // vLLM's scheduler publishes the step's KV cache events once the step is recorded.
            PublishKvEvents();
        }
    }

    /// <summary>
    /// Forgets every cached prefix (vLLM's reset_prefix_cache), publishing AllBlocksCleared at once; false, changing
    /// nothing, while any request holds blocks.
    /// </summary>
    public bool ResetPrefixCache()
    {
        bool reset = _scheduler.KvCache.Pool.ResetPrefixCache();
        PublishKvEvents();
        return reset;
    }

    // The KV cache events recorded since the last batch, as one batch (none when there are none, as in vLLM).
    private void PublishKvEvents()
    {
        var events = _scheduler.KvCache.TakeEvents();
        if (events.Count > 0)
            _kvEvents.Publish(KvEventBatch.Now(events));
    }

    private List<RequestOutput> StepOnce()
    {
        ProcessKvTransfers();
        var scheduled = Schedule();
        StartRemoteLoads(scheduled);
        _stalled = _connector != null && scheduled.IsEmpty && scheduled.RemoteLoads.Count == 0 && _deferred == null;
        long started = Stopwatch.GetTimestamp();
        var launched = Try(() => _runner.Launch(scheduled), out var error);
        // The previous step's outputs, made while the device runs this one.
        var outputs = ProcessDeferredOutputs();
        var run = launched is null ? null : Try(() => _runner.Finish(launched), out error);
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (run is null)
        {
            // Nothing of this step was recorded: failing its requests frees their blocks and leaves the rest intact.
            foreach (var s in scheduled.Scheduled)
                Fail(s.Request.RequestId, error!);
            return outputs;
        }
        long t0 = Stopwatch.GetTimestamp();
        scheduled = Record(scheduled, run, seconds);
        ProposeDrafts(scheduled, run, launched!);
        if (launched!.IsAsynchronous)
            _deferred = (scheduled, run);
        else
            outputs.AddRange(ProcessOutputs(scheduled, run));
        Timings.Lap(StepPhase.Update, t0);
        Timings.EndStep();
        return outputs;
    }

    private SchedulerOutput Schedule()
    {
        long t0 = Stopwatch.GetTimestamp();
        var scheduled = _scheduler.Schedule();
        Timings.Lap(StepPhase.Schedule, t0);
        return scheduled;
    }

    // The runner's launch or finish; null with the exception when it threw (the forward's own failure fails the batch).
    // A tensor-parallel group that lost a worker cannot run another step: that escapes, and the engine is dead.
    private static T? Try<T>(Func<T> step, out Exception? error) where T : class
    {
        error = null;
        try
        {
            return step();
        }
        catch (Exception e) when (e is not OutOfMemoryException and not TensorParallelException)
        {
            error = e;
            return null;
        }
    }

    // The scheduler records the step: failures end their prompts, recomputed requests go back to waiting,
    // computed counts and sampled tokens advance. Returns the part of the step that was recorded.
    private SchedulerOutput Record(SchedulerOutput scheduled, ModelRunnerOutput run, double seconds)
    {
        foreach (var (id, e) in run.Failed)
            Fail(id, e);
        _scheduler.Recompute(run.Recompute);
        // Siblings of a failed sequence were ended with it, recomputed requests went back to waiting, and the
        // previous step's stop strings or failures may have ended requests of this one: it is recorded for the others only.
        if (scheduled.Scheduled.Any(s => s.Request.Status != RequestStatus.Running))
            scheduled = scheduled with { Scheduled = scheduled.Scheduled.Where(s => s.Request.Status == RequestStatus.Running).ToList() };
        foreach (var s in scheduled.Scheduled)
        {
            _generationTokens -= s.Request.NumOutputTokens;
            _firstTokens -= s.Request.NumOutputTokens > 0 ? 1 : 0;
        }
        _spec?.RecordStep(scheduled, run.SampledTokens, seconds);
        _scheduler.Update(scheduled, run.SampledTokens);
        foreach (var s in scheduled.Scheduled)
        {
            _generationTokens += s.Request.NumOutputTokens;
            _firstTokens += s.Request.NumOutputTokens > 0 ? 1 : 0;
        }
        if (_connector != null)
            HoldFinishedPrefills();
        return scheduled;
    }

    // Outputs of a step whose processing was deferred to overlap the next forward (none when nothing waits).
    private List<RequestOutput> ProcessDeferredOutputs()
    {
        if (_deferred is not var (scheduled, run))
            return [];
        long t0 = Stopwatch.GetTimestamp();
        _deferred = null;
        var outputs = ProcessOutputs(scheduled, run);
        Timings.Lap(StepPhase.Output, t0);
        return outputs;
    }

    // Detokenization, stop strings and outputs of a step the scheduler has recorded.
    private List<RequestOutput> ProcessOutputs(SchedulerOutput scheduled, ModelRunnerOutput run)
    {
        var (outputs, stopped, failed) = _output.Process(scheduled, run);
        foreach (var (id, e) in failed)
            Fail(id, e);
        _scheduler.FinishRequests(stopped, RequestStatus.FinishedStopped);
        return AttachKvTransferParams(outputs);
    }

    /// <summary>Requests that failed in the steps since the last call (each is already ended and freed).</summary>
    public IReadOnlyList<RequestFailure> TakeFailures()
    {
        if (_failures.Count == 0)
            return [];
        var taken = _failures.ToList();
        _failures.Clear();
        return taken;
    }

    // Ends the prompt a failed sequence belongs to (all its sequences), as an abort does, and records why.
    private void Fail(string childId, Exception e)
    {
        // A sequence whose prompt is no longer known was already ended with it (blocks freed) in this step.
        if (_output.ParentOf(childId) is not { } parent)
            return;
        Abort(parent);
        _failures.Add(new RequestFailure(parent, e));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        // Before the pool goes: the connector's sessions and pulls read and write it until they have stopped.
        _connector?.Dispose();
        _kvEvents.Dispose();
        DisposeModel();
    }

    private void DisposeModel()
    {
        _draft?.Dispose();
        _runner.Cache.Dispose();
        _model.Dispose();
        _backend.Dispose();
        _weights.Dispose();
    }
}
