using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Pagoda.Server;

/// <summary>
/// Server-Sent Events exactly as OpenAI frames them: each chunk as `data: {json}\n\n`, flushed at once, and
/// `data: [DONE]\n\n` at the end of a stream that completed.
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
        await produce(async chunk =>
        {
            await body.WriteAsync(Encoding.UTF8.GetBytes($"data: {chunk.ToJsonString(ServerContext.Json)}\n\n"), ct);
            await body.FlushAsync(ct);
        });
        await body.WriteAsync(Done, ct);
        await body.FlushAsync(ct);
    }
}
