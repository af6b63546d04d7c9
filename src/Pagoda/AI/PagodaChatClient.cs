using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Pagoda.Engine;

namespace Pagoda.AI;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over an in-process engine: .NET apps chat with a
/// model through the same abstraction they use for OpenAI, without HTTP. Messages go through the model's
/// chat template; options left unset take the model's generation_config.json defaults.
/// </summary>
public sealed class PagodaChatClient : IChatClient
{
    private readonly AsyncLLMEngine _engine;
    private readonly bool _ownsEngine;
    private readonly ChatClientMetadata _metadata;

    /// <summary>A client over a running engine; with <paramref name="ownsEngine"/>, disposing the client disposes it.</summary>
    public PagodaChatClient(AsyncLLMEngine engine, string? modelId = null, bool ownsEngine = false)
    {
        _engine = engine;
        _ownsEngine = ownsEngine;
        _metadata = new ChatClientMetadata("pagoda", null, modelId ?? engine.Engine.Args.Model);
    }

    /// <summary>Loads a model (a folder or Hub repo id) and owns the engine it starts.</summary>
    public PagodaChatClient(EngineArgs args) : this(new AsyncLLMEngine(new LLMEngine(args)), args.Model, ownsEngine: true)
    {
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var (id, prompt, p) = Prepare(messages, options);
        RequestOutput? last = null;
        await foreach (var o in _engine.GenerateAsync(id, prompt, p with { OutputKind = RequestOutputKind.FinalOnly }, cancellationToken))
            last = o;
        var c = last!.Outputs[0];
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, c.Text))
        {
            ResponseId = id,
            ModelId = _metadata.DefaultModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = FinishReason(c.FinishReason),
            Usage = Usage(last.PromptTokenIds.Count, c.TokenIds.Count),
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (id, prompt, p) = Prepare(messages, options);
        int generated = 0;
        await foreach (var o in _engine.GenerateAsync(id, prompt, p with { OutputKind = RequestOutputKind.Delta }, cancellationToken))
        {
            foreach (var c in o.Outputs)
            {
                generated += c.TokenIds.Count;
                var update = new ChatResponseUpdate(ChatRole.Assistant, c.Text)
                {
                    ResponseId = id,
                    MessageId = id,
                    ModelId = _metadata.DefaultModelId,
                    CreatedAt = DateTimeOffset.UtcNow,
                    FinishReason = FinishReason(c.FinishReason),
                };
                if (o.Finished)
                    update.Contents.Add(new UsageContent(Usage(o.PromptTokenIds.Count, generated)));
                yield return update;
            }
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(_engine) ? _engine
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsEngine)
            _engine.Dispose();
    }

    private (string Id, PromptInput Prompt, SamplingParams Params) Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var engine = _engine.Engine;
        var template = engine.ChatTemplate ?? throw new InvalidOperationException("The model has no chat template.");
        var list = new JsonArray();
        if (options?.Instructions is { } instructions)
            list.Add(new JsonObject { ["role"] = "system", ["content"] = instructions });
        foreach (var m in messages)
            list.Add(new JsonObject { ["role"] = m.Role.Value, ["content"] = m.Text });
        var prompt = new PromptInput { Text = template.Render(list, addGenerationPrompt: true), AddSpecialTokens = false };

        var d = engine.GenerationConfig.SamplingDefaults();
        var p = d with
        {
            Temperature = options?.Temperature ?? d.Temperature,
            TopP = options?.TopP ?? d.TopP,
            TopK = options?.TopK ?? d.TopK,
            FrequencyPenalty = options?.FrequencyPenalty ?? 0,
            PresencePenalty = options?.PresencePenalty ?? 0,
            Seed = options?.Seed,
            Stop = options?.StopSequences?.ToList() ?? [],
            // Like the server: generation_config's max_new_tokens, else until the context is full.
            MaxTokens = options?.MaxOutputTokens ?? engine.GenerationConfig.MaxNewTokens,
        };
        return ($"chat-{Guid.NewGuid():N}", prompt, p);
    }

    private static ChatFinishReason? FinishReason(string? reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        null => null,
        var other => new ChatFinishReason(other),
    };

    private static UsageDetails Usage(int prompt, int completion) =>
        new() { InputTokenCount = prompt, OutputTokenCount = completion, TotalTokenCount = prompt + completion };
}
