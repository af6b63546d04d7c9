using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Pagoda.Server;

/// <summary>
/// Server-Sent Events exactly as OpenAI frames them: each chunk as `data: {json}\n\n`, flushed at once, and
/// `data: [DONE]\n\n` at the end. A request that fails after the stream began sends one `data: {"error": ...}`
/// event (OpenAI's error body) before `[DONE]`.
/// </summary>
internal sealed class SseResult(Func<Func<JsonObject, Task>, Task> produce) : IResult
{
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    public async Task ExecuteAsync(HttpContext http)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream; charset=utf-8";
        http.Response.Headers.CacheControl = "no-cache";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        var body = http.Response.Body;
        var ct = http.RequestAborted;
        try
        {
            await produce(async chunk =>
            {
                await body.WriteAsync(Encoding.UTF8.GetBytes($"data: {chunk.ToJsonString(ServerContext.Json)}\n\n"), ct);
                await body.FlushAsync(ct);
            });
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // The 200 is already out: as vLLM does, the failure becomes an error event, then the stream ends.
            var (status, message, param) = ApiErrors.Classify(http, e);
            await body.WriteAsync(Encoding.UTF8.GetBytes($"data: {ApiErrors.Json(status, message, param)}\n\n"), ct);
        }
        await body.WriteAsync(Done, ct);
        await body.FlushAsync(ct);
    }
}
