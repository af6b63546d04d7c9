using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Pagoda.OpenAi;
using Pagoda.Server.Metrics;

namespace Pagoda.Server.Endpoints;

/// <summary>Everything but generation: models, embeddings, tokenize, health, version, load, metrics, invocations.</summary>
internal static class ServiceEndpoints
{
    private static readonly string Version =
        typeof(ServiceEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (ServerContext s) => TypedResults.Json(
            new ModelList(s.ModelNames.Select(n => new ModelCard(n, s.Created, s.Model.Args.Model, s.Model.MaxModelLen)).ToList()),
            ServerJsonContext.Relaxed.ModelList));
        app.MapPost("/v1/embeddings", async (HttpContext http, ServerContext s) => await Embeddings(http, s, await ServerContext.ReadBody(http)));
        app.MapPost("/tokenize", async (HttpContext http, ServerContext s) =>
        {
            var body = await ServerContext.ReadBody(http);
            s.CheckModel(body);
            return ServerContext.JsonBody(TokenizeApi.Tokenize(body, s.Model));
        });
        app.MapPost("/detokenize", async (HttpContext http, ServerContext s) =>
        {
            var body = await ServerContext.ReadBody(http);
            s.CheckModel(body);
            return ServerContext.JsonBody(TokenizeApi.Detokenize(body, s.Model));
        });
        // Health answers 503 once the engine loop has failed, so orchestrators restart the server.
        app.MapGet("/health", (ServerContext s) => s.Engine.Failure is null
            ? Results.Ok()
            : ApiErrors.Result(503, $"The engine failed: {s.Engine.Failure.Message}"));
        app.MapMethods("/ping", ["GET", "POST"], (ServerContext s) => s.Engine.Failure is null
            ? Results.Ok()
            : ApiErrors.Result(503, "The engine failed."));
        app.MapGet("/version", () => TypedResults.Json(new VersionInfo(Version), ServerJsonContext.Relaxed.VersionInfo));
        app.MapGet("/load", (ServerContext s) => TypedResults.Json(new LoadInfo(s.Metrics.InFlight), ServerJsonContext.Relaxed.LoadInfo));
        app.MapGet("/metrics", (ServerContext s) => TypedResults.Text(s.Metrics.Render(s.Engine.Replicas.Select(r => r.Stats).ToList()), PrometheusText.ContentType));
        app.MapPost("/invocations", Invocations);
    }

    private static async Task<IResult> Embeddings(HttpContext http, ServerContext s, JsonObject body)
    {
        string model = s.CheckModel(body);
        var job = EmbeddingsApi.Parse(body, s.Model.Folder.Config.HiddenSize);
        var inputs = job.Inputs.Select(p => p with { TokenIds = s.Model.ProcessPrompt(p) }).ToList();
        string id = OpenAiJson.NewId("embd");
        for (int i = 0; i < inputs.Count; i++)
            s.LogRequest($"{id}-{i}", inputs[i], null);
        var vectors = await Task.WhenAll(inputs.Select((p, i) =>
            s.Engine.EmbedAsync($"{id}-{i}", p, s.Options.PoolingType, http.RequestAborted)));
        int tokens = inputs.Sum(p => p.TokenIds!.Count);
        return ServerContext.JsonBody(EmbeddingsApi.Response(id, model, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), job, vectors, tokens));
    }

    // SageMaker's single entry point: the body's shape says which API it is (as vLLM decides).
    private static async Task<IResult> Invocations(HttpContext http, ServerContext s)
    {
        var body = await ServerContext.ReadBody(http);
        if (body.ContainsKey("messages"))
            return await GenerationEndpoints.Chat(http, s, body);
        if (body.ContainsKey("prompt"))
            return await GenerationEndpoints.Completions(http, s, body);
        if (body.ContainsKey("input"))
            return await Embeddings(http, s, body);
        throw new ApiException(400, "Cannot tell the API from the body: expected 'messages' (chat), 'prompt' (completions) or 'input' (embeddings).");
    }
}
