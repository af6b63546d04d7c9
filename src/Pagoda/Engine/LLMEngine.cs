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
        var group = TensorParallelWorkers.CreateGroup(args, MaxModelLen);
        var backendOptions = args.ResolvedBackendOptions();
        if (group != null && backendOptions.CpuThreads == null)   // the ranks share the cores
            backendOptions = backendOptions with { CpuThreads = Math.Max(1, backendOptions.NumCpuThreads / args.RanksPerNode) };
        _weights = null!;
        TensorParallelWorkers? workers = null;
        try
        {
            _backend = provider?.CreateBackend(args, Folder.Config, MaxModelLen, args.DataParallelRank) ?? new CpuBackend(backendOptions);
            // On a device the group's collectives are the provider's (NCCL), every rank joining through rank 0's id.
            string? collectivesId = group != null ? provider?.NewCollectivesId() : null;
            var comm = collectivesId != null ? provider!.CreateCommunicator(_backend, group!, collectivesId) : group?.Communicator();
            _weights = OpenWeights(Folder, args.LoadFormat, args.DType);
            _model = ModelRegistry.Create(Folder.Config, _weights, _backend, args.Quantization, MaxModelLen, comm);
            _weights.ReleaseDecodedMxfp4();   // the model holds its own copies of the decoded experts
            var draft = LoadDraft(args, _backend, Folder.Config, MaxModelLen);
            // The draft's pool has as many blocks as the target's: its bytes per block share the memory.
            long targetBytes = (long)Folder.Config.NumLayers * _model.KvWidth, draftBytes = draft is var (dm, _) ? (long)dm.Config.NumLayers * dm.KvWidth : 0;
            int? blocks = provider?.KvCacheBlocks(_backend, args, Folder.Config, _model.KvWidth, MaxModelLen) is int b ? (int)(b * targetBytes / (targetBytes + draftBytes)) : null;
            KvCacheInfo = SizeKvCache(args, _model.KvWidth, Folder.Config.NumLayers, MaxModelLen, blocks, KvCacheSlidingWindow(Folder.Config, MaxModelLen),
                (double)(targetBytes + draftBytes) / targetBytes);
            var cache = _backend.AllocateKvCache(Folder.Config.NumLayers, KvCacheInfo.NumBlocks, args.BlockSize, _model.KvWidth);
            var execution = ExecutionShape.Of(args, MaxModelLen);
            if (group != null)
            {
                var job = new WorkerJob(Folder.Path, args.LoadFormat, args.DType, args.Quantization, MaxModelLen, KvCacheInfo.NumBlocks, args.BlockSize,
                    backendOptions, TensorParallelWorker.ConfigSha256(Folder.Path), provider?.Device ?? "cpu", collectivesId,
                    execution, args.RanksPerNode);
                workers = TensorParallelWorkers.Start(group, args.RanksPerNode, job, args.WorkerCommand);
                group = null;   // the workers own it now
            }
            if (draft is var (draftModel, draftWeights))
                _draft = CreateDraft(args, provider, draftModel, draftWeights);
            // Every rank prepares its shard alike (the workers after reporting ready): graph warm-ups' collectives meet.
            _model = provider?.Prepare(_model, _backend, cache, execution) ?? _model;
            if (workers != null)
                (_model, workers) = (new TensorParallelModel(_model, workers), null);   // the model owns them now
            _runner = new ModelRunner(_model, cache, (_backend as IDeviceSampler)?.MaxCandidates ?? 0, args.FaultHook);
        }
        catch
        {
            _draft?.Dispose();
            _model?.Dispose();
            workers?.Dispose();
            group?.Dispose();
            _weights?.Dispose();
            _backend?.Dispose();
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
