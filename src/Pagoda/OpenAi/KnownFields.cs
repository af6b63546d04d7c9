using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>
/// Which request fields Pagoda reads, which vLLM fields it does not implement (a request that sets one to
/// anything but its no-op value gets a 400 naming it, never a silent 200), and which are unknown to both
/// (vLLM logs and ignores those; so does Pagoda, through <see cref="Unknown"/>).
/// </summary>
public static class KnownFields
{
    // OpenAI's and vLLM's sampling fields both endpoints read (SamplingParamsReader).
    private static readonly string[] Sampling =
    [
        "model", "n", "temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty",
        "seed", "stop", "stop_token_ids", "include_stop_str_in_output", "ignore_eos", "min_tokens", "skip_special_tokens",
        "spaces_between_special_tokens", "logit_bias", "allowed_token_ids", "bad_words", "prompt_logprobs", "stream",
        "stream_options", "user", "add_special_tokens", "response_format", "structured_outputs", "guided_json", "guided_regex",
        "guided_choice", "guided_grammar", "guided_decoding_backend", "kv_transfer_params",
    ];

    private static readonly HashSet<string> Chat =
    [
        .. Sampling, "messages", "max_tokens", "max_completion_tokens", "logprobs", "top_logprobs", "tools", "tool_choice",
        "parallel_tool_calls", "chat_template_kwargs", "add_generation_prompt", "continue_final_message",
        "include_reasoning",
    ];

    private static readonly HashSet<string> Completion =
        [.. Sampling, "prompt", "max_tokens", "logprobs", "echo", "best_of", "suffix"];

    // vLLM request fields Pagoda does not implement, with the value that asks for nothing (null: only absence or null).
    private static readonly Dictionary<string, JsonNode?> Unsupported = new()
    {
        ["use_beam_search"] = false, ["length_penalty"] = 1.0, ["priority"] = 0, ["truncate_prompt_tokens"] = null,
        ["logits_processors"] = null, ["return_tokens_as_token_ids"] = false, ["return_token_ids"] = false,
        ["cache_salt"] = null, ["vllm_xargs"] = null, ["request_id"] = null,
        ["documents"] = null, ["mm_processor_kwargs"] = null, ["prompt_embeds"] = null, ["structural_tag"] = null,
        ["guided_whitespace_pattern"] = null,
        ["reasoning_effort"] = null, ["echo"] = false, ["chat_template"] = null,
    };

    /// <summary>
    /// Throws a 400 for a vLLM field Pagoda does not implement that the request sets; returns the fields neither
    /// knows (to be logged as ignored, as vLLM does).
    /// </summary>
    public static IReadOnlyList<string> Check(JsonObject body, bool chat)
    {
        var supported = chat ? Chat : Completion;
        var unknown = new List<string>();
        foreach (var (name, value) in body)
        {
            if (supported.Contains(name))
                continue;
            if (Unsupported.TryGetValue(name, out var noop))
            {
                if (value is not null && !JsonNode.DeepEquals(value, noop) && !SameNumber(value, noop))
                    throw new OpenAiRequestException($"'{name}' is not supported by this server.", name);
                continue;
            }
            unknown.Add(name);
        }
        return unknown;
    }

    // 1 and 1.0 are the same no-op value.
    private static bool SameNumber(JsonNode value, JsonNode? noop) =>
        value is JsonValue a && noop is JsonValue b && a.GetValueKind() == JsonValueKind.Number && b.GetValueKind() == JsonValueKind.Number
        && double.Parse(a.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture)
            == double.Parse(b.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>vLLM's log line for fields a request carried that nothing reads.</summary>
    public static string Unknown(IReadOnlyList<string> fields) =>
        $"The following fields were present in the request but ignored: {{{string.Join(", ", fields.Select(f => $"'{f}'"))}}}";
}
