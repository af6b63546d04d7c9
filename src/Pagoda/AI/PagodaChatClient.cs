using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Pagoda.Engine;
using Pagoda.OpenAi;

namespace Pagoda.AI;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over an in-process engine: .NET apps chat with a
/// model through the same abstraction they use for OpenAI, without HTTP. A request is handled exactly as the
/// server handles the same chat request (template, tools, tool modes, response formats); options left unset take
/// the model's generation_config.json defaults. Function calls come back as FunctionCallContent, so M.E.AI's
/// FunctionInvokingChatClient can run them.
/// </summary>
public sealed class PagodaChatClient : IChatClient
{
    private readonly AsyncLLMEngine _engine;
    private readonly bool _ownsEngine;
    private readonly ChatClientMetadata _metadata;
    private readonly ChatServingOptions _serving;

    /// <summary>
    /// A client over a running engine; with <paramref name="ownsEngine"/>, disposing the client disposes it.
    /// <paramref name="serving"/> names the tool-call and reasoning parsers (as the server's flags do): without a
    /// tool-call parser, tools can only be forced (ChatToolMode.RequireAny / RequireSpecific) or shown (None).
    /// </summary>
    public PagodaChatClient(AsyncLLMEngine engine, string? modelId = null, bool ownsEngine = false, ChatServingOptions? serving = null)
    {
        _engine = engine;
        _ownsEngine = ownsEngine;
        _serving = serving ?? new ChatServingOptions();
        _serving.Validate();
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
        var (id, job) = Prepare(messages, options);
        RequestOutput? last = null;
        await foreach (var o in _engine.GenerateAsync(id, job.Prompt, job.Params with { OutputKind = RequestOutputKind.FinalOnly }, cancellationToken))
            last = o;
        var c = last!.Outputs[0];
        var (reasoning, parsed) = job.ReadOutput(c.Text);
        var message = new ChatMessage(ChatRole.Assistant, []);
        if (reasoning != null)
            message.Contents.Add(new TextReasoningContent(reasoning));
        if (parsed.Content != null)
            message.Contents.Add(new TextContent(parsed.Content));
        foreach (var call in ChatRequestBuilder.Calls(parsed.Calls))
            message.Contents.Add(call);
        return new ChatResponse(message)
        {
            ResponseId = id,
            ModelId = _metadata.DefaultModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = FinishReason(job.FinishReason(c.FinishReason, parsed.Calls.Count > 0)),
            Usage = Usage(last.PromptTokenIds.Count, c.TokenIds.Count),
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (id, job) = Prepare(messages, options);
        int generated = 0;
        var reasoning = job.Reasoning?.Stream();
        var tools = job.ToolParser?.Stream();
        var text = new System.Text.StringBuilder();
        await foreach (var o in _engine.GenerateAsync(id, job.Prompt, job.Params with { OutputKind = RequestOutputKind.Delta }, cancellationToken))
        {
            foreach (var c in o.Outputs)
            {
                generated += c.TokenIds.Count;
                bool final = c.FinishReason != null;
                var (thought, rest) = reasoning?.Push(c.Text, final) ?? ("", c.Text);
                var (content, _) = tools?.Push(rest, final) ?? (rest, []);
                text.Append(rest);
                var update = new ChatResponseUpdate(ChatRole.Assistant, content)
                {
                    ResponseId = id,
                    MessageId = id,
                    ModelId = _metadata.DefaultModelId,
                    CreatedAt = DateTimeOffset.UtcNow,
                    FinishReason = FinishReason(c.FinishReason),
                };
                if (thought.Length > 0)
                    update.Contents.Insert(0, new TextReasoningContent(thought));
                // Calls go out whole in the last update, their arguments parsed (M.E.AI has no partial-argument content).
                if (final && job.ToolParser?.Parse(text.ToString()) is { Calls.Count: > 0 } parsed)
                {
                    foreach (var call in ChatRequestBuilder.Calls(parsed.Calls))
                        update.Contents.Add(call);
                    update.FinishReason = FinishReason(job.FinishReason(c.FinishReason, calledTools: true));
                }
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

    // The request as the server would parse it: template, tools, tool choice and structured output handled alike.
    private (string Id, ChatJob Job) Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var job = ChatCompletionsApi.Parse(ChatRequestBuilder.Body(messages, options), _engine.Engine, _serving);
        return ($"chat-{Guid.NewGuid():N}", job);
    }

    private static ChatFinishReason? FinishReason(string? reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        "tool_calls" => ChatFinishReason.ToolCalls,
        null => null,
        var other => new ChatFinishReason(other),
    };

    private static UsageDetails Usage(int prompt, int completion) =>
        new() { InputTokenCount = prompt, OutputTokenCount = completion, TotalTokenCount = prompt + completion };
}
