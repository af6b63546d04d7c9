using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>
/// kv_transfer_params on the wire, as vLLM reads and writes it: an object (or null) in /v1/completions and
/// /v1/chat/completions bodies, and the same object in a held prefill's response. Keys nobody reads are ignored, as vLLM
/// hands the dict to its connector unread; the ones read must have their types.
/// </summary>
public static class KvTransferParamsJson
{
    private const string Field = "kv_transfer_params";

    /// <summary>The body's kv_transfer_params (null when absent or null); a wrong type is a 400 naming the key.</summary>
    public static KvTransferParams? Read(JsonObject body)
    {
        if (body[Field] is null)
            return null;
        if (body[Field] is not JsonObject o)
            throw new OpenAiRequestException($"'{Field}' must be an object.", Field);
        return new KvTransferParams
        {
            DoRemoteDecode = Bool(o, "do_remote_decode"),
            DoRemotePrefill = Bool(o, "do_remote_prefill"),
            RemoteEngineId = String(o, "remote_engine_id"),
            RemoteRequestId = String(o, "remote_request_id"),
            RemoteBlockIds = o["remote_block_ids"] switch
            {
                null => null,
                JsonArray a => a.Select(e => e is JsonValue v && v.TryGetValue(out int id) ? id : throw Wrong("remote_block_ids", "a list of integers")).ToList(),
                _ => throw Wrong("remote_block_ids", "a list of integers"),
            },
            RemoteHost = String(o, "remote_host"),
            RemotePort = Int(o, "remote_port"),
            TpSize = Int(o, "tp_size"),
            RemoteNumTokens = Int(o, "remote_num_tokens"),
        };
    }

    /// <summary>The params as a response's kv_transfer_params.</summary>
    public static JsonObject Write(KvTransferParams p) => new()
    {
        ["do_remote_prefill"] = p.DoRemotePrefill,
        ["do_remote_decode"] = p.DoRemoteDecode,
        ["remote_block_ids"] = p.RemoteBlockIds is { } ids ? new JsonArray(ids.Select(i => (JsonNode)i).ToArray()) : null,
        ["remote_engine_id"] = p.RemoteEngineId,
        ["remote_request_id"] = p.RemoteRequestId,
        ["remote_host"] = p.RemoteHost,
        ["remote_port"] = p.RemotePort,
        ["tp_size"] = p.TpSize,
        ["remote_num_tokens"] = p.RemoteNumTokens,
    };

    /// <summary>Adds a held prefill's kv_transfer_params to a response body (vLLM's top-level field); none: unchanged.</summary>
    public static JsonObject WithKvTransferParams(this JsonObject response, KvTransferParams? p)
    {
        if (p != null)
            response["kv_transfer_params"] = Write(p);
        return response;
    }

    private static OpenAiRequestException Wrong(string key, string expected) => new($"'{Field}.{key}' must be {expected}.", Field);

    private static bool Bool(JsonObject o, string key) => o[key] switch
    {
        null => false,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw Wrong(key, "a boolean"),
    };

    private static string? String(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw Wrong(key, "a string"),
    };

    private static int? Int(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out int i) => i,
        _ => throw Wrong(key, "an integer"),
    };
}
