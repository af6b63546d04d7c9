using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pagoda.Engine;
using Pagoda.OpenAi;
using Pagoda.Server.Metrics;

namespace Pagoda.Server;

/// <summary>What every endpoint shares: the engine, the served names, metrics and request logging.</summary>
internal sealed class ServerContext
{
    /// <summary>Bodies keep non-ASCII text as is (as vLLM's pydantic output does) rather than \u escapes.</summary>
    public static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly ILogger _log;

    public ServerContext(IEngineClient engine, ServerOptions options, ILogger<ServerContext> log)
    {
        Engine = engine;
        Options = options;
        _log = log;
        // vLLM serves a model under the name it was given; the embedded default is simply "fortune-chat".
        string given = engine.Engine.Args.Model;
        ModelNames = options.ServedModelNames.Count > 0 ? options.ServedModelNames
            : [given == EngineArgs.DefaultModel ? Path.GetFileName(EngineArgs.DefaultModel) : given];
        var kv = engine.Engine.KvCacheInfo;
        var args = engine.Engine.Args;
        string cacheConfig = string.Join(",", new (string, string)[]
        {
            ("block_size", kv.BlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("cache_dtype", "auto"),
            ("enable_prefix_caching", args.EnablePrefixCaching ? "True" : "False"),
            ("gpu_memory_utilization", args.GpuMemoryUtilization.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("num_gpu_blocks", kv.NumBlocks.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        }.Select(l => $"{l.Item1}=\"{l.Item2}\""));
        Metrics = new ServerMetrics(options.MetricsPrefix, ModelName, cacheConfig);
    }

    public IEngineClient Engine { get; }
    public LLMEngine Model => Engine.Engine;
    public ServerOptions Options { get; }
    public ServerMetrics Metrics { get; }
    public IReadOnlyList<string> ModelNames { get; }
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>The name responses report (vLLM's first served model name).</summary>
    public string ModelName => ModelNames[0];

    /// <summary>Checks the body's `model` (absent means the default); an unknown name is a 404.</summary>
    public string CheckModel(JsonObject body)
    {
        if (body["model"] is null)
            return ModelName;
        if (body["model"] is not JsonValue v || !v.TryGetValue(out string? name))
            throw new ApiException(400, "'model' must be a string.", "model");
        if (!ModelNames.Contains(name))
            throw new ApiException(404, $"The model `{name}` does not exist.", "model");
        return ModelName;
    }

    /// <summary>
    /// The request id: `PREFIX-` and the client's X-Request-Id header when it sends a sane one (as vLLM does,
    /// so logs can be matched across services), else a random one.
    /// </summary>
    public static string RequestId(HttpContext http, string prefix)
    {
        string? given = http.Request.Headers["X-Request-Id"];
        if (given is { Length: > 0 and <= 128 } && given.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            return $"{prefix}-{given}";
        return OpenAiJson.NewId(prefix);
    }

    /// <summary>Reads the request body as a JSON object; malformed JSON is a 400.</summary>
    public static async Task<JsonObject> ReadBody(HttpContext http)
    {
        JsonNode? node;
        try
        {
            node = await JsonNode.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"Malformed JSON in the request body: {e.Message}");
        }
        var body = node as JsonObject ?? throw new ApiException(400, "The request body must be a JSON object.");
        try
        {
            CheckStrings(body);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json parses lazily: invalid UTF-8 or a lone surrogate escape only fails when read.
            throw new ApiException(400, $"Malformed JSON in the request body: {e.Message}");
        }
        return body;
    }

    // Reads every name and string once, so text that cannot become a .NET string is refused here and not
    // deep inside an endpoint.
    private static void CheckStrings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                    CheckStrings(child);
                break;
            case JsonArray a:
                foreach (var child in a)
                    CheckStrings(child);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                v.GetValue<string>();
                break;
        }
    }

    /// <summary>A JSON body built by the OpenAI layer.</summary>
    public static IResult JsonBody(JsonObject body) => TypedResults.Text(body.ToJsonString(Json), "application/json", statusCode: 200);

    /// <summary>vLLM's request log: the id always; the prompt and parameters only with --enable-log-requests.</summary>
    public void LogRequest(string id, PromptInput prompt, SamplingParams? p)
    {
        if (Options.EnableLogRequests)
            _log.LogInformation("Received request {Id}: prompt: {Prompt}, params: {Params}, prompt_token_ids: {Ids}",
                id, JsonSerializer.Serialize(prompt.Text, Json), p is null ? "None" : JsonSerializer.Serialize(p, Json), prompt.TokenIds is { } ids ? $"[{string.Join(", ", ids)}]" : "None");
        _log.LogInformation("Added request {Id}.", id);
    }

    /// <summary>vLLM's warning for request fields that nothing reads.</summary>
    public void LogIgnoredFields(IReadOnlyList<string> fields)
    {
        if (fields.Count > 0)
            _log.LogWarning("{Message}", OpenAi.KnownFields.Unknown(fields));
    }

    /// <summary>Logs a finished request's outputs (only with --enable-log-requests).</summary>
    public void LogOutput(string id, IEnumerable<string> texts)
    {
        if (Options.EnableLogRequests)
            _log.LogInformation("Finished request {Id}: outputs: {Outputs}", id, JsonSerializer.Serialize(texts.ToArray(), Json));
    }
}
