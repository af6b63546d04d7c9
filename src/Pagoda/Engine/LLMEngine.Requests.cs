using Pagoda.Requests;
using Pagoda.Scheduling;
using Pagoda.StructuredOutput;

namespace Pagoda.Engine;

/// <summary>The request side of the engine: prompts checked and tokenized, grammars compiled, requests queued, embeddings.</summary>
public sealed partial class LLMEngine
{
    /// <summary>
    /// Queues a request. Text is tokenized here; an empty or too long prompt, ids outside the vocabulary
    /// or invalid sampling parameters are rejected with <see cref="ArgumentException"/>.
    /// </summary>
    public void AddRequest(string requestId, PromptInput prompt, SamplingParams samplingParams)
    {
        samplingParams.Validate();
        samplingParams.ValidateTokenIds(Folder.Config.VocabSize);
        if (_output.Children(requestId).Count > 0)
            throw new ArgumentException($"Request id '{requestId}' is already in use.");
        // An aborted decode keeps its id (and blocks) until its pull has stopped writing them, a moment later.
        if (Enumerable.Range(0, samplingParams.N).Any(i => _scheduler.IsLoadingRemoteKvs(samplingParams.N == 1 ? requestId : $"{i}_{requestId}")))
            throw new ArgumentException($"Request id '{requestId}' is still in use: its aborted KV transfer is stopping. Retry shortly.");
        int[] ids = ProcessPrompt(prompt);
        CheckKvTransferParams(samplingParams, ids.Length);
        int maxTokens = Math.Min(samplingParams.MaxTokens ?? int.MaxValue, MaxModelLen - ids.Length);
        var badWords = samplingParams.BadWords is { Count: > 0 } ? BadWords.TokenIds(Tokenizer, samplingParams.BadWords) : null;
        var grammar = samplingParams.StructuredOutputs is { } so ? CompileGrammar(so) : null;
        var children = new List<Request>(samplingParams.N);
        for (int i = 0; i < samplingParams.N; i++)
        {
            // Child i of a seeded request draws from seed + i, as vLLM's parallel sampling does.
            long seed = samplingParams.Seed is long s ? s + i : _seeds.NextInt64();
            string childId = samplingParams.N == 1 ? requestId : $"{i}_{requestId}";
            children.Add(new Request(childId, ids, samplingParams with { N = 1 }, maxTokens, seed, _eosIds)
            {
                BadWordsTokenIds = badWords,
                Grammar = grammar != null ? new GrammarMatcher(grammar) : null,
                ReasoningEndTokenId = grammar != null ? _reasoningEnd : null,
                ReasoningEnded = grammar != null && _reasoningEnd is int end && ClosesReasoning(ids, end),
            });
        }
        _output.Add(new ParentRequest(requestId, prompt.Text, ids, samplingParams), children);
        foreach (var child in children)
            _scheduler.AddRequest(child);
        _stalled = false;
        _promptTokens += ids.Length;
    }

    // Whether the prompt's last reasoning block is already closed (a template that turned thinking off writes
    // "<think></think>" itself), so the output starts after the reasoning.
    private bool ClosesReasoning(int[] prompt, int end)
    {
        int lastEnd = Array.LastIndexOf(prompt, end);
        return lastEnd >= 0 && (_reasoningStart is not int start || Array.LastIndexOf(prompt, start) < lastEnd);
    }

    /// <summary>
    /// The compiled grammar of a structured output (cached by the compiler); an invalid or unsupported one is an
    /// <see cref="ArgumentException"/> naming the problem. Thread-safe: the server compiles on the request's thread
    /// first, so the engine's loop finds it cached.
    /// </summary>
    public CompiledGrammar CompileGrammar(StructuredOutputsParams so)
    {
        so.Validate();
        GrammarCompiler compiler;
        lock (_grammarsLock)
        {
            _grammars ??= new GrammarCompiler(TokenVocabulary.FromTokenizer(Tokenizer, Folder.Config.VocabSize, _eosIds));
            _compactGrammars ??= new GrammarCompiler(_grammars.Vocabulary, GrammarLimits.Default with { MaxJsonWhitespace = 0 });
            compiler = so.DisableAnyWhitespace ? _compactGrammars : _grammars;
        }
        try
        {
            return so switch
            {
                { Json: { } schema } => compiler.JsonSchema(schema),
                { JsonObject: true } => compiler.JsonObject(),
                { Regex: { } pattern } => compiler.Regex(pattern),
                { Choice: { } choices } => compiler.Choice(choices),
                _ => compiler.Grammar(so.Grammar!),
            };
        }
        catch (GrammarException e)
        {
            throw new ArgumentException($"Invalid structured output: {e.Message}", e);
        }
    }

    /// <summary>
    /// The prompt's token ids (text is tokenized here), checked: not empty, shorter than --max-model-len,
    /// inside the vocabulary. Problems throw <see cref="ArgumentException"/>.
    /// </summary>
    public int[] ProcessPrompt(PromptInput prompt)
    {
        int[] ids = prompt.TokenIds?.ToArray()
            ?? (_tokenizer ?? throw new ArgumentException("Without a tokenizer (--skip-tokenizer-init) prompts must be token ids."))
                .Encode(prompt.Text ?? throw new ArgumentException("The prompt has neither text nor token ids."),
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

        return ids;
    }

    /// <summary>
    /// The prompt's pooled final hidden state, L2-normalized (vLLM's embed task). It runs as one forward
    /// outside the scheduler over blocks borrowed from the pool and returned at once; returns null, changing
    /// nothing, when the pool has no room for the prompt right now (and throws when it never can: a sliding-window
    /// pool need not hold a whole context). <paramref name="promptIds"/> must have
    /// passed <see cref="ProcessPrompt"/>.
    /// </summary>
    public float[]? TryEmbed(string requestId, int[] promptIds, PoolingType pooling)
    {
        var kv = _scheduler.KvCache;
        // One forward writes every position of the prompt, so all its blocks are needed at once; a sliding-window
        // pool is sized for a window, not a context, and a prompt it can never hold fails instead of waiting forever.
        if ((promptIds.Length + kv.BlockSize - 1) / kv.BlockSize > kv.Pool.NumUsableBlocks)
            throw new ArgumentException(
                $"The prompt's {promptIds.Length} tokens need more than the KV cache's {kv.Pool.NumUsableBlocks} blocks of {kv.BlockSize} in one forward.");
        var request = new Request(requestId, promptIds, new SamplingParams { MaxTokens = 1 }, 1, 0, _eosIds);
        if (!kv.AllocateSlots(request, promptIds.Length))
            return null;
        try
        {
            int n = promptIds.Length;
            var batch = _runner.BuildBatch([new ScheduledRequest(request, n, kv.GetBlockIds(requestId))]) with
            {
                LogitsIndices = pooling == PoolingType.Mean ? Enumerable.Range(0, n).ToArray() : [n - 1],
                ReturnHiddenStates = true,
            };
            float[] rows = _model.Forward(batch, _runner.Cache);
            // Written: freeing keeps the prompt's full blocks in the prefix cache (a throw above uncaches them).
            request.NumComputedTokens = n;
            _promptTokens += n;
            return Pool(rows, Folder.Config.HiddenSize);
        }
        finally
        {
            kv.Free(request);
            PublishKvEvents();
        }
    }

    // Mean of the rows (one row for last-token pooling), then L2 normalization, in double for stability.
    private static float[] Pool(float[] rows, int hidden)
    {
        int count = rows.Length / hidden;
        var sum = new double[hidden];
        for (int r = 0; r < count; r++)
        {
            for (int i = 0; i < hidden; i++)
                sum[i] += rows[r * hidden + i];
        }
        double norm = Math.Sqrt(sum.Sum(v => v * v));
        double scale = norm > 1e-12 ? 1 / norm : 0;
        return sum.Select(v => (float)(v * scale)).ToArray();
    }
}
