using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Pagoda.OpenAi;

namespace Pagoda.Server.Endpoints;

/// <summary>
/// vLLM's /v1/completions/render and /v1/chat/completions/render: the request read, checked and tokenized by the same
/// code as generation (so a render answers 400 where generation would), returned as vLLM's GenerateRequest and never
/// queued. The llm-d endpoint picker asks these for a prompt's tokens.
/// </summary>
internal static class RenderEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions/render", async (HttpContext http, ServerContext s) => Chat(s, await ServerContext.ReadBody(http)));
        app.MapPost("/v1/completions/render", async (HttpContext http, ServerContext s) => Completions(s, await ServerContext.ReadBody(http)));
    }

    private static IResult Chat(ServerContext s, JsonObject body)
    {
        s.CheckModel(body);
        var job = ChatCompletionsApi.Parse(body, s.Model, s.Options.Chat);
        s.LogIgnoredFields(job.IgnoredFields);
        var prompt = GenerationEndpoints.Prepare(s, job.Prompt, job.Params, job.MaxTokens);
        return Json(RenderApi.Chat(body, job, prompt, s.Model.MaxModelLen));
    }

    private static IResult Completions(ServerContext s, JsonObject body)
    {
        s.CheckModel(body);
        var job = CompletionsApi.Parse(body, s.Model);
        s.LogIgnoredFields(job.IgnoredFields);
        var prompts = job.Prompts.Select(p => GenerationEndpoints.Prepare(s, p, job.Params, job.MaxTokens)).ToList();
        return Json(RenderApi.Completions(body, job, prompts, s.Model.MaxModelLen));
    }

    private static IResult Json(JsonNode body) => TypedResults.Text(body.ToJsonString(ServerContext.Json), "application/json", statusCode: 200);
}
