using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>
/// vLLM's render routes (/v1/completions/render, /v1/chat/completions/render): a request read and tokenized exactly as
/// generation reads it, returned as vLLM's <c>GenerateRequest</c> (the token-in request a router or a disaggregated
/// decoder would send on) instead of being generated. Routers such as the llm-d endpoint picker read its token_ids.
/// </summary>
/// <remarks>
/// The body is what vLLM's <c>GenerateRequest.model_dump()</c> writes for a text prompt: request_id, token_ids,
/// features (null: no multimodal inputs), sampling_params, model (the request's own field), stream, stream_options
/// (only when streaming), cache_salt, priority, kv_transfer_params. sampling_params is vLLM's <c>SamplingParams</c> as
/// msgspec writes it with omit_defaults: only fields that differ from vLLM's defaults, after its __post_init__ (stop,
/// stop_token_ids and bad_words become lists; greedy resets top_p, top_k and min_p), private fields left out.
/// </remarks>
public static class RenderApi
{
    /// <summary>The chat route's body: one <c>GenerateRequest</c>.</summary>
    public static JsonObject Chat(JsonObject body, ChatJob job, PromptInput admitted, int maxModelLen) =>
        GenerateRequest("chatcmpl", body, job.Params, job.Stream, admitted, maxModelLen);

    /// <summary>The completions route's body: one <c>GenerateRequest</c> per prompt, in order.</summary>
    public static JsonArray Completions(JsonObject body, CompletionJob job, IReadOnlyList<PromptInput> admitted, int maxModelLen) =>
        new(admitted.Select(p => (JsonNode)GenerateRequest("cmpl", body, job.Params, job.Stream, p, maxModelLen)).ToArray());

    private static JsonObject GenerateRequest(string prefix, JsonObject body, SamplingParams p, bool stream, PromptInput prompt,
        int maxModelLen)
    {
        var ids = prompt.TokenIds ?? throw new ArgumentException("The prompt was not tokenized.");
        // As the engine resolves it (and vLLM's get_max_tokens): the request's or default max_tokens, at most what the
        // context leaves after the prompt.
        int maxTokens = Math.Min(p.MaxTokens ?? int.MaxValue, maxModelLen - ids.Count);
        var kind = stream ? RequestOutputKind.Delta : RequestOutputKind.FinalOnly;
        return new JsonObject
        {
            ["request_id"] = OpenAiJson.NewId(prefix),
            ["token_ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()),
            ["features"] = null,
            ["sampling_params"] = VllmSamplingParams(p with { MaxTokens = maxTokens, OutputKind = kind }),
            ["model"] = body["model"]?.DeepClone(),
            ["stream"] = stream,
            ["stream_options"] = stream ? StreamOptions(body) : null,
            ["cache_salt"] = null,
            ["priority"] = 0,
            // As vLLM's: the request's own, passed on to the engine that generates.
            ["kv_transfer_params"] = body["kv_transfer_params"]?.DeepClone(),
        };
    }

    // vLLM's StreamOptions model: include_usage defaults to true, continuous_usage_stats to false; other keys are kept.
    private static JsonObject? StreamOptions(JsonObject body)
    {
        if (body["stream_options"] is not JsonObject given)
            return null;
        var o = new JsonObject { ["include_usage"] = true, ["continuous_usage_stats"] = false };
        foreach (var (key, value) in given)
            o[key] = value?.DeepClone();
        return o;
    }

    /// <summary>
    /// <paramref name="p"/> in vLLM's names, in vLLM's field order, with only the fields that differ from vLLM's
    /// defaults (msgspec's omit_defaults), as vLLM's own <c>SamplingParams</c> would hold them after __post_init__.
    /// </summary>
    public static JsonObject VllmSamplingParams(SamplingParams p)
    {
        bool greedy = p.IsGreedy;
        // vLLM raises a temperature in (0, 0.01) to 0.01 and resets the filters of greedy sampling.
        double temperature = p.Temperature > 0 && p.Temperature < 0.01 ? 0.01 : p.Temperature;
        var o = new JsonObject();
        void Put(string name, JsonNode? value, bool differs)
        {
            if (differs)
                o[name] = value;
        }
        Put("n", p.N, p.N != 1);
        Put("presence_penalty", p.PresencePenalty, p.PresencePenalty != 0);
        Put("frequency_penalty", p.FrequencyPenalty, p.FrequencyPenalty != 0);
        Put("repetition_penalty", p.RepetitionPenalty, p.RepetitionPenalty != 1);
        Put("temperature", temperature, temperature != 1);
        Put("top_p", p.TopP, !greedy && p.TopP != 1);
        Put("top_k", p.TopK, !greedy && p.TopK != 0);
        Put("min_p", p.MinP, !greedy && p.MinP != 0);
        Put("seed", p.Seed, p.Seed != null);
        // Defaults of None that __post_init__ turns into lists, which then differ from the default and are written.
        o["stop"] = new JsonArray(p.Stop.Select(s => (JsonNode)s).ToArray());
        o["stop_token_ids"] = new JsonArray(p.StopTokenIds.Distinct().Select(i => (JsonNode)i).ToArray());
        Put("ignore_eos", p.IgnoreEos, p.IgnoreEos);
        Put("max_tokens", p.MaxTokens, p.MaxTokens != 16);
        Put("min_tokens", p.MinTokens, p.MinTokens != 0);
        Put("logprobs", p.Logprobs, p.Logprobs != null);
        Put("prompt_logprobs", p.PromptLogprobs, p.PromptLogprobs != null);
        Put("skip_special_tokens", p.SkipSpecialTokens, !p.SkipSpecialTokens);
        Put("spaces_between_special_tokens", p.SpacesBetweenSpecialTokens, !p.SpacesBetweenSpecialTokens);
        Put("include_stop_str_in_output", p.IncludeStopStrInOutput, p.IncludeStopStrInOutput);
        Put("output_kind", (int)p.OutputKind, p.OutputKind != RequestOutputKind.Cumulative);
        // The OpenAI routes build a fresh SamplingParams per request with skip_clone=True.
        o["skip_clone"] = true;
        // Characters held back for stop strings (Python's len counts code points).
        int holdBack = p.Stop.Count > 0 && !p.IncludeStopStrInOutput ? p.Stop.Max(s => s.EnumerateRunes().Count()) - 1 : 0;
        Put("output_text_buffer_length", holdBack, holdBack != 0);
        if (p.StructuredOutputs is { } so)
            o["structured_outputs"] = StructuredOutputs(so);
        if (p.LogitBias is { } bias)
            o["logit_bias"] = new JsonObject(bias.Select(kv => KeyValuePair.Create(
                kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)Math.Clamp(kv.Value, -100.0, 100.0))));
        if (p.AllowedTokenIds is { } allowed)
            o["allowed_token_ids"] = new JsonArray(allowed.Select(i => (JsonNode)i).ToArray());
        o["bad_words"] = new JsonArray((p.BadWords ?? []).Distinct().Select(w => (JsonNode)w).ToArray());
        // None by default; __post_init__ sets it to whether prompt logprobs are asked for.
        o["skip_reading_prefix_cache"] = p.PromptLogprobs != null;
        return o;
    }

    // vLLM's StructuredOutputsParams dataclass, every public field written.
    private static JsonObject StructuredOutputs(StructuredOutputsParams so)
    {
        JsonNode? schema = null;
        if (so.Json != null)
        {
            try
            {
                schema = JsonNode.Parse(so.Json);
            }
            catch (JsonException)
            {
                schema = so.Json;
            }
        }
        return new JsonObject
        {
            ["json"] = schema,
            ["regex"] = so.Regex,
            ["choice"] = so.Choice is { } c ? new JsonArray(c.Select(s => (JsonNode)s).ToArray()) : null,
            ["grammar"] = so.Grammar,
            ["json_object"] = so.JsonObject ? true : null,
            ["disable_any_whitespace"] = so.DisableAnyWhitespace,
            ["disable_additional_properties"] = false,
            ["whitespace_pattern"] = null,
            ["structural_tag"] = null,
        };
    }
}
