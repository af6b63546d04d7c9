using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Pagoda.Server;

/// <summary>OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.</summary>
internal sealed record ErrorBody(ErrorDetail Error);

/// <summary>The error itself; <see cref="Code"/> repeats the HTTP status as vLLM does.</summary>
internal sealed record ErrorDetail(string Message, string Type, string? Param, int Code);

/// <summary>GET /v1/models.</summary>
internal sealed record ModelList(IReadOnlyList<ModelCard> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

/// <summary>One served name of the model (vLLM's ModelCard).</summary>
internal sealed record ModelCard(
    [property: JsonPropertyOrder(0)] string Id,
    [property: JsonPropertyOrder(2)] long Created,
    [property: JsonPropertyOrder(4)] string Root,
    [property: JsonPropertyOrder(6)] int MaxModelLen)
{
    [JsonPropertyOrder(1)]
    public string Object => "model";

    [JsonPropertyOrder(3)]
    public string OwnedBy => "pagoda";

    [JsonPropertyOrder(5)]
    public string? Parent => null;
}

/// <summary>GET /version.</summary>
internal sealed record VersionInfo(string Version);

/// <summary>GET /load: requests being served.</summary>
internal sealed record LoadInfo(int ServerLoad);

/// <summary>Source-generated serialization for the server's typed bodies (and the OpenAI layer's JsonObjects).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(VersionInfo))]
[JsonSerializable(typeof(LoadInfo))]
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class ServerJsonContext : JsonSerializerContext
{
    /// <summary>Generated metadata, with non-ASCII and quotes written as is (like vLLM's bodies), not as \u escapes.</summary>
    public static ServerJsonContext Relaxed { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
