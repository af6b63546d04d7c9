using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.Tokenization;

namespace Pagoda;

/// <summary>How far an offline batch has come (what vLLM's progress bar shows).</summary>
public sealed record GenerateProgress(int Completed, int Total, long PromptTokens, long OutputTokens, TimeSpan Elapsed);

/// <summary>
/// Offline generation over an <see cref="LLMEngine"/>, as vLLM's `LLM` class: queue every prompt, step
/// until all finish, return the outputs in input order.
/// </summary>
public sealed class LLM : IDisposable
{
    private readonly LLMEngine _engine;
    private long _nextId;

    /// <summary>Loads <paramref name="model"/> (a model folder) with default options.</summary>
    public LLM(string model) : this(new EngineArgs { Model = model })
    {
    }

    /// <summary>Loads the model with the given options.</summary>
    public LLM(EngineArgs args) => _engine = new LLMEngine(args);

    /// <summary>The underlying engine.</summary>
    public LLMEngine Engine => _engine;

    /// <summary>The model's tokenizer.</summary>
    public Tokenizer Tokenizer => _engine.Tokenizer;

    /// <summary>The sampling parameters a request that sets nothing gets (generation_config.json applied).</summary>
    public SamplingParams GetDefaultSamplingParams() => _engine.GenerationConfig.SamplingDefaults();

    /// <summary>Generates for each prompt with one shared (or the default) SamplingParams.</summary>
    public IReadOnlyList<RequestOutput> Generate(IEnumerable<PromptInput> prompts, SamplingParams? samplingParams = null,
        IProgress<GenerateProgress>? progress = null)
    {
        var list = prompts.ToList();
        var p = samplingParams ?? GetDefaultSamplingParams();
        return Generate(list, list.Select(_ => p).ToList(), progress);
    }

    /// <summary>
    /// Generates for each prompt with its own SamplingParams, as one continuously batched job; results come
    /// back in input order. <paramref name="progress"/> hears after every step that finished a prompt.
    /// </summary>
    public IReadOnlyList<RequestOutput> Generate(IReadOnlyList<PromptInput> prompts, IReadOnlyList<SamplingParams> samplingParams,
        IProgress<GenerateProgress>? progress = null)
    {
        if (prompts.Count != samplingParams.Count)
            throw new ArgumentException($"{prompts.Count} prompts but {samplingParams.Count} sampling parameter sets.");
        var ids = new List<string>(prompts.Count);
        var started = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < prompts.Count; i++)
            {
                string id = (_nextId++).ToString(System.Globalization.CultureInfo.InvariantCulture);
                // Offline generation only needs the final result of each prompt.
                _engine.AddRequest(id, prompts[i], samplingParams[i] with { OutputKind = RequestOutputKind.FinalOnly });
                ids.Add(id);
            }
            var done = new Dictionary<string, RequestOutput>();
            long promptTokens = 0, outputTokens = 0;
            while (_engine.HasUnfinishedRequests)
            {
                var finished = _engine.Step();
                // Offline, a failed prompt fails the call (the others are aborted below).
                if (_engine.TakeFailures() is [var failure, ..])
                    throw new RequestFailedException(failure.RequestId, failure.Error);
                foreach (var output in finished)
                {
                    done[output.RequestId] = output;
                    promptTokens += output.PromptTokenIds.Count;
                    outputTokens += output.Outputs.Sum(o => o.TokenIds.Count);
                }
                if (finished.Count > 0)
                    progress?.Report(new GenerateProgress(done.Count, ids.Count, promptTokens, outputTokens, started.Elapsed));
            }
            return ids.Select(id => done[id]).ToList();
        }
        catch
        {
            foreach (string id in ids)
                _engine.Abort(id);
            throw;
        }
    }

    /// <summary>Applies the chat template (with the generation prompt) to each conversation and generates.</summary>
    public IReadOnlyList<RequestOutput> Chat(IEnumerable<JsonArray> conversations, SamplingParams? samplingParams = null,
        IProgress<GenerateProgress>? progress = null) =>
        Generate(conversations.Select(c => RenderChat(c)), samplingParams, progress);

    /// <summary>The prompt a conversation becomes: the rendered template, tokenized without extra special tokens.</summary>
    public PromptInput RenderChat(JsonArray messages, JsonArray? tools = null, JsonObject? kwargs = null,
        bool addGenerationPrompt = true)
    {
        var template = _engine.ChatTemplate ?? throw new InvalidOperationException(
            "The model has no chat template; pass one with --chat-template.");
        return new PromptInput { Text = template.Render(messages, addGenerationPrompt, tools, kwargs), AddSpecialTokens = false };
    }

    /// <inheritdoc />
    public void Dispose() => _engine.Dispose();
}
