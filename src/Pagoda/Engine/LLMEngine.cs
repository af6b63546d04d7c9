using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Execution;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Sampling;
using Pagoda.Tokenization;

namespace Pagoda.Engine;

/// <summary>
/// The engine: AddRequest queues work, Step advances it by one model forward, Abort drops a request.
/// This first version runs one sequence at a time (prefill, then one token per step) over the paged
/// KV pool; continuous batching replaces the FIFO without touching models or the runner.
/// </summary>
public sealed class LLMEngine : IDisposable
{
    private readonly WeightStore _weights;
    private readonly IBackend _backend;
    private readonly IModel _model;
    private readonly ModelRunner _runner;
    private readonly Queue<Request> _waiting = new();
    private readonly HashSet<string> _aborted = [];
    private readonly Random _seeds;
    private readonly HashSet<int> _eosIds;
    private Request? _running;

    /// <summary>Loads the model, tokenizer and chat template named by <paramref name="args"/>.</summary>
    public LLMEngine(EngineArgs args)
    {
        args.Validate();
        Args = args;
        Folder = ModelFolder.Open(args);
        Tokenizer = Tokenizer.FromFolder(args.Tokenizer ?? Folder.Path);
        ChatTemplate = ChatTemplate.FromFolder(args.Tokenizer ?? Folder.Path, args.ChatTemplate);
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
        if (Tokenizer.EosTokenId is int eos)
            _eosIds.Add(eos);

        _seeds = new Random(unchecked((int)args.Seed));
        _backend = new CpuBackend();
        _weights = WeightStore.Open(Folder.Path);
        try
        {
            _model = ModelRegistry.Create(Folder.Config, _weights, _backend);
            int numBlocks = (MaxModelLen + args.BlockSize - 1) / args.BlockSize;
            var cache = _backend.AllocateKvCache(Folder.Config.NumLayers, numBlocks, args.BlockSize, _model.KvWidth);
            _runner = new ModelRunner(_model, cache);
        }
        catch
        {
            _weights.Dispose();
            throw;
        }
    }

    /// <summary>The options this engine was built with.</summary>
    public EngineArgs Args { get; }

    /// <summary>The model folder and its configs.</summary>
    public ModelFolder Folder { get; }

    /// <summary>The model's tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The model's chat template, if it has one.</summary>
    public ChatTemplate? ChatTemplate { get; }

    /// <summary>The generation config in force (empty under `--generation-config vllm`).</summary>
    public GenerationConfig GenerationConfig { get; }

    /// <summary>Longest prompt + output.</summary>
    public int MaxModelLen { get; }

    /// <summary>Ids that end a sequence unless IgnoreEos.</summary>
    public IReadOnlySet<int> EosTokenIds => _eosIds;

    /// <summary>Whether any request is waiting or running.</summary>
    public bool HasUnfinishedRequests => _running != null || _waiting.Count > 0;

    /// <summary>
    /// Queues a request. Text is tokenized here; a prompt that is empty, too long or holds ids outside
    /// the vocabulary is rejected with <see cref="ArgumentException"/>.
    /// </summary>
    public void AddRequest(string requestId, PromptInput prompt, SamplingParams samplingParams)
    {
        samplingParams.Validate();
        int[] ids = prompt.TokenIds?.ToArray()
            ?? Tokenizer.Encode(prompt.Text ?? throw new ArgumentException("prompt has neither text nor token ids"),
                prompt.AddSpecialTokens).ToArray();
        if (ids.Length == 0)
            throw new ArgumentException("The prompt is empty.");
        if (ids.Length >= MaxModelLen)
            throw new ArgumentException(
                $"The prompt has {ids.Length} tokens; with --max-model-len {MaxModelLen} at least one must remain for output.");
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)Folder.Config.VocabSize)
                throw new ArgumentException($"Token id {id} is out of vocabulary (size {Folder.Config.VocabSize}).");
        }
        int maxTokens = Math.Min(samplingParams.MaxTokens ?? int.MaxValue, MaxModelLen - ids.Length);
        var rng = new Random(unchecked((int)(samplingParams.Seed ?? _seeds.NextInt64())));
        _waiting.Enqueue(new Request(requestId, prompt.Text, ids, samplingParams, maxTokens, rng));
    }

    /// <summary>Drops a waiting or running request; its blocks are free for the next one.</summary>
    public void Abort(string requestId)
    {
        if (_running?.RequestId == requestId)
            _running = null;
        else
            _aborted.Add(requestId);
    }

    /// <summary>Runs one forward and returns the requests that finished in it.</summary>
    public IReadOnlyList<RequestOutput> Step()
    {
        while (_running == null && _waiting.Count > 0)
        {
            var next = _waiting.Dequeue();
            if (!_aborted.Remove(next.RequestId))
                _running = next;
        }
        if (_running is not { } req)
            return [];

        int numTokens = req.NumTokens - req.NumComputedTokens;
        bool promptLogprobs = req.PromptLogprobs != null && req.NumComputedTokens == 0;
        EnsureBlocks(req, req.NumTokens);
        var seq = new ScheduledSequence(new TokenView(req), req.NumComputedTokens, numTokens, req.BlockIds, promptLogprobs);
        float[][] logits = _runner.Execute([seq])[0];
        req.NumComputedTokens += numTokens;

        if (promptLogprobs)
            OutputBuilder.AddPromptLogprobs(req, logits);
        OutputBuilder.SampleAndAppend(req, logits[^1], _eosIds);
        if (!req.IsFinished)
            return [];
        _running = null;
        return [OutputBuilder.Final(req, Tokenizer)];
    }

    private void EnsureBlocks(Request req, int numTokens)
    {
        // One sequence at a time: it owns the pool from block 0 upwards.
        int needed = (numTokens + Args.BlockSize - 1) / Args.BlockSize;
        while (req.BlockIds.Count < needed)
            req.BlockIds.Add(req.BlockIds.Count);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _runner.Cache.Dispose();
        _model.Dispose();
        _backend.Dispose();
        _weights.Dispose();
    }

    /// <summary>The request's prompt + output as one list without copying.</summary>
    private sealed class TokenView(Request r) : IReadOnlyList<int>
    {
        public int this[int index] => r.TokenAt(index);
        public int Count => r.NumTokens;
        public IEnumerator<int> GetEnumerator()
        {
            for (int i = 0; i < Count; i++)
                yield return this[i];
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
