using System.Text.Json.Nodes;
using Pagoda.Engine;
using Pagoda.OpenAi.Tools;

namespace Pagoda.OpenAi;

/// <summary>
/// The `chat.completion.chunk`s of one streamed chat request, in OpenAI's order: a role chunk per choice,
/// content deltas, a finish chunk (empty delta) per choice, and with include_usage a last chunk whose
/// `choices` is empty. Feed it the engine's delta outputs in order.
/// </summary>
public sealed class ChatCompletionStream(string id, string model, long created, ChatJob job, LLMEngine engine)
{
    private int _promptTokens, _completionTokens;
    // One per choice when the output's tool calls are parsed.
    private readonly ToolCallStream?[] _tools = Enumerable.Range(0, job.Params.N).Select(_ => job.ToolParser?.Stream()).ToArray();
    private readonly Reasoning.ReasoningParser.ReasoningStream?[] _reasoning =
        Enumerable.Range(0, job.Params.N).Select(_ => job.Reasoning?.Stream()).ToArray();

    /// <summary>The role chunks, sent before the first token.</summary>
    public IEnumerable<JsonObject> Start() =>
        Enumerable.Range(0, job.Params.N).Select(i => Chunk(Choice(i, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null, null, null)));

    /// <summary>The chunks for one delta output.</summary>
    public IEnumerable<JsonObject> Next(RequestOutput delta)
    {
        _promptTokens = delta.PromptTokenIds.Count;
        foreach (var c in delta.Outputs)
        {
            _completionTokens += c.TokenIds.Count;
            bool hasLogprobs = job.Logprobs && c.Logprobs is { Count: > 0 };
            bool final = c.FinishReason != null;
            var (reasoning, text) = _reasoning[c.Index]?.Push(c.Text, final) ?? ("", c.Text);
            var tools = _tools[c.Index];
            var (content, calls) = tools?.Push(text, final) ?? (text, []);
            if (reasoning.Length > 0 && job.IncludeReasoning)
                yield return Chunk(Choice(c.Index, new JsonObject { ["reasoning_content"] = reasoning, ["reasoning"] = reasoning }, null, null, null));
            if (content.Length > 0 || hasLogprobs)
            {
                var logprobs = hasLogprobs ? LogprobsFormat.Chat(engine.Tokenizer, c.Logprobs!, job.TopLogprobs) : null;
                yield return Chunk(Choice(c.Index, new JsonObject { ["content"] = content }, logprobs, null, null));
            }
            foreach (var call in calls)
                yield return Chunk(Choice(c.Index, new JsonObject { ["tool_calls"] = new JsonArray(ToolCallJson(call)) }, null, null, null));
            if (c.FinishReason != null)
                yield return Chunk(Choice(c.Index, new JsonObject(), null, job.FinishReason(c.FinishReason, tools?.CalledTools == true), c.StopReason));
        }
    }

    /// <summary>The usage chunk when the request asked for it (stream_options.include_usage), else null.</summary>
    public JsonObject? Usage()
    {
        if (!job.IncludeUsage)
            return null;
        var chunk = Chunk([]);
        chunk["usage"] = OpenAiJson.Usage(_promptTokens, _completionTokens);
        return chunk;
    }

    // OpenAI's streamed call: index always; id, type and name in the first piece; arguments in every piece.
    private static JsonObject ToolCallJson(ToolCallDelta d)
    {
        var o = new JsonObject { ["index"] = d.Index };
        if (d.Id != null)
        {
            o["id"] = d.Id;
            o["type"] = "function";
        }
        var fn = new JsonObject();
        if (d.Name != null)
            fn["name"] = d.Name;
        fn["arguments"] = d.Arguments ?? "";
        o["function"] = fn;
        return o;
    }

    private static JsonObject Choice(int index, JsonObject delta, JsonNode? logprobs, string? finishReason, object? stopReason) => new()
    {
        ["index"] = index,
        ["delta"] = delta,
        ["logprobs"] = logprobs,
        ["finish_reason"] = finishReason,
        ["stop_reason"] = OpenAiJson.StopReason(stopReason),
    };

    private JsonObject Chunk(params JsonObject[] choices) =>
        OpenAiJson.StreamChunk(id, "chat.completion.chunk", created, model, job.IncludeUsage, choices);
}
