using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.OpenAi;

/// <summary>A parsed /v1/completions request: one or more prompts sharing sampling parameters.</summary>
/// <remarks><see cref="MaxTokens"/> is the request's own max_tokens (null: the default, 16), checked against the
/// context once each prompt is tokenized; <see cref="IgnoredFields"/> are fields nothing reads.</remarks>
public sealed record CompletionJob(IReadOnlyList<PromptInput> Prompts, SamplingParams Params, bool Echo, int? Logprobs, bool Stream,
    bool IncludeUsage = false)
{
    public int? MaxTokens { get; init; }
    public IReadOnlyList<string> IgnoredFields { get; init; } = [];
}

/// <summary>/v1/completions: request parsing and the response body, in OpenAI's shapes with vLLM's extras.</summary>
public static class CompletionsApi
{
    /// <summary>Reads a request body; invalid fields throw <see cref="OpenAiRequestException"/>.</summary>
    public static CompletionJob Parse(JsonObject body, LLMEngine engine)
    {
        var f = new RequestFields(body);
        var ignored = KnownFields.Check(body, chat: false);
        if (f.Has("suffix"))
            throw new OpenAiRequestException("suffix is not supported.", "suffix");
        if (f.Int("best_of") is int bestOf && bestOf != (f.Int("n") ?? 1))
            throw new OpenAiRequestException("best_of is not supported; use n.", "best_of");
        bool addSpecial = f.Bool("add_special_tokens") ?? true;
        var prompts = ReadPrompts(body["prompt"], "prompt").Select(p => p with { AddSpecialTokens = addSpecial }).ToList();
        int? logprobs = f.Int("logprobs");
        if (logprobs is < 0)
            throw new OpenAiRequestException($"logprobs must be non-negative, got {logprobs}.", "logprobs");
        if (logprobs > SamplingParamsReader.MaxLogprobs)
            throw new OpenAiRequestException($"logprobs must be at most {SamplingParamsReader.MaxLogprobs}, got {logprobs}.", "logprobs");
        bool echo = f.Bool("echo") ?? false;
        // OpenAI's and vLLM's completions default to 16 tokens (or generation_config's max_new_tokens, when fewer).
        int? maxTokens = f.Int("max_tokens");
        int defaultMax = Math.Min(16, engine.GenerationConfig.MaxNewTokens ?? 16);
        var p = SamplingParamsReader.Read(f, engine.GenerationConfig.SamplingDefaults(), maxTokens, defaultMax) with { Logprobs = logprobs };
        if (echo && logprobs != null)
            p = p with { PromptLogprobs = p.PromptLogprobs ?? logprobs };
        // A response has one kv_transfer_params (vLLM's shape), so a prefill or decode is one prompt.
        if (p.KvTransferParams is { IsActive: true } && prompts.Count > 1)
            throw new OpenAiRequestException("kv_transfer_params takes a single prompt.", "kv_transfer_params");
        return new CompletionJob(prompts, p, echo, logprobs, f.Bool("stream") ?? false, RequestFields.IncludeUsage(body))
        {
            MaxTokens = maxTokens,
            IgnoredFields = ignored,
        };
    }

    /// <summary>OpenAI's prompt shapes (also /v1/embeddings' input): a string, strings, token ids or lists of them.</summary>
    internal static List<PromptInput> ReadPrompts(JsonNode? prompt, string field)
    {
        OpenAiRequestException Bad() =>
            new($"{field} must be a string, a list of strings, a list of token ids or a list of lists of token ids.", field);
        IReadOnlyList<int> Ids(JsonArray a) =>
            a.Select(e => e is JsonValue v && v.TryGetValue(out int i) && i >= 0 ? i : throw Bad()).ToList();
        switch (prompt)
        {
            case JsonValue v when v.TryGetValue(out string? s):
                return [s];
            case JsonArray { Count: > 0 } a when a.All(e => e is JsonValue ev && ev.TryGetValue(out string? _)):
                return a.Select(e => (PromptInput)e!.GetValue<string>()).ToList();
            case JsonArray { Count: > 0 } a when a.All(e => e is JsonArray):
                return a.Select(e => PromptInput.FromTokenIds(Ids((JsonArray)e!))).ToList();
            case JsonArray { Count: > 0 } a:
                return [PromptInput.FromTokenIds(Ids(a))];
            default:
                throw Bad();
        }
    }

    /// <summary>The non-streaming response for <paramref name="outputs"/> (one per prompt, in order).</summary>
    public static JsonObject Response(string id, string model, long created, CompletionJob job, IReadOnlyList<RequestOutput> outputs,
        LLMEngine engine)
    {
        var choices = new JsonArray();
        int promptTokens = 0, completionTokens = 0;
        for (int i = 0; i < outputs.Count; i++)
        {
            var o = outputs[i];
            promptTokens += o.PromptTokenIds.Count;
            string promptText = o.Prompt ?? engine.Tokenizer.Decode(o.PromptTokenIds);
            foreach (var c in o.Outputs)
            {
                completionTokens += c.TokenIds.Count;
                JsonNode? logprobs = null;
                if (job.Logprobs != null)
                {
                    var entries = new List<TokenLogprob?>();
                    var ids = new List<int>();
                    if (job.Echo)
                    {
                        entries.AddRange(o.PromptLogprobs!);
                        ids.AddRange(o.PromptTokenIds);
                    }
                    entries.AddRange(c.Logprobs!);
                    ids.AddRange(c.TokenIds);
                    logprobs = LogprobsFormat.Completion(engine.Tokenizer, entries, ids, 0);
                }
                choices.Add(new JsonObject
                {
                    ["index"] = i * job.Params.N + c.Index,
                    ["text"] = job.Echo ? promptText + c.Text : c.Text,
                    ["logprobs"] = logprobs,
                    ["finish_reason"] = c.FinishReason,
                    ["stop_reason"] = OpenAiJson.StopReason(c.StopReason),
                });
            }
        }
        return new JsonObject
        {
            ["id"] = id,
            ["object"] = "text_completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = choices,
            ["usage"] = OpenAiJson.Usage(promptTokens, completionTokens),
            ["system_fingerprint"] = OpenAiJson.SystemFingerprint,
        }.WithKvTransferParams(outputs.Select(o => o.KvTransferParams).FirstOrDefault(k => k != null));
    }
}
