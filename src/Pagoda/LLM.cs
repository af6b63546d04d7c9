using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.Tokenization;

namespace Pagoda;

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
    public SamplingParams GetDefaultSamplingParams() => SamplingParams.FromGenerationConfig(_engine.GenerationConfig);

    /// <summary>Generates for each prompt with one shared (or the default) SamplingParams.</summary>
    public IReadOnlyList<RequestOutput> Generate(IEnumerable<PromptInput> prompts, SamplingParams? samplingParams = null)
    {
        var list = prompts.ToList();
        var p = samplingParams ?? GetDefaultSamplingParams();
        return Generate(list, list.Select(_ => p).ToList());
    }

    /// <summary>Generates for each prompt with its own SamplingParams.</summary>
    public IReadOnlyList<RequestOutput> Generate(IReadOnlyList<PromptInput> prompts, IReadOnlyList<SamplingParams> samplingParams)
    {
        if (prompts.Count != samplingParams.Count)
            throw new ArgumentException($"{prompts.Count} prompts but {samplingParams.Count} sampling parameter sets.");
        var ids = new List<string>(prompts.Count);
        try
        {
            for (int i = 0; i < prompts.Count; i++)
            {
                string id = (_nextId++).ToString(System.Globalization.CultureInfo.InvariantCulture);
                _engine.AddRequest(id, prompts[i], samplingParams[i]);
                ids.Add(id);
            }
            var done = new Dictionary<string, RequestOutput>();
            while (_engine.HasUnfinishedRequests)
            {
                foreach (var output in _engine.Step())
                    done[output.RequestId] = output;
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
    public IReadOnlyList<RequestOutput> Chat(IEnumerable<JsonArray> conversations, SamplingParams? samplingParams = null) =>
        Generate(conversations.Select(RenderChat), samplingParams);

    /// <summary>The prompt a conversation becomes: the rendered template, tokenized without extra special tokens.</summary>
    public PromptInput RenderChat(JsonArray messages)
    {
        var template = _engine.ChatTemplate ?? throw new InvalidOperationException(
            "The model has no chat template; pass one with --chat-template.");
        return new PromptInput { Text = template.Render(messages, addGenerationPrompt: true), AddSpecialTokens = false };
    }

    /// <inheritdoc />
    public void Dispose() => _engine.Dispose();
}
