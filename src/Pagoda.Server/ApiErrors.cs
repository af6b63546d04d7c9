using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pagoda.OpenAi;
using Pagoda.Tokenization.Jinja;

namespace Pagoda.Server;

/// <summary>A request the server refuses, with its HTTP status (400 unless said otherwise).</summary>
internal sealed class ApiException(int status, string message, string? param = null, int? retryAfterSeconds = null) : Exception(message)
{
    public int Status { get; } = status;
    public int? RetryAfterSeconds { get; } = retryAfterSeconds;
    public string? Param { get; } = param;
}

/// <summary>Turns every failure into OpenAI's error body with the right status.</summary>
internal static class ApiErrors
{
    public static string TypeOf(int status) => status switch
    {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        413 => "RequestTooLargeError",
        503 => "ServiceUnavailableError",
        _ => "InternalServerError",
    };

    public static IResult Result(int status, string message, string? param = null) =>
        TypedResults.Json(new ErrorBody(new ErrorDetail(message, TypeOf(status), param, status)), ServerJsonContext.Relaxed.ErrorBody,
            statusCode: status);

    public static Task Write(HttpContext http, int status, string message, string? param = null) =>
        Result(status, message, param).ExecuteAsync(http);

    /// <summary>Middleware: maps exceptions thrown by the endpoints to error responses.</summary>
    public static async Task Handle(HttpContext http, RequestDelegate next)
    {
        try
        {
            await next(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its request was aborted and there is nobody to answer.
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            var (status, message, param) = Classify(http, e);
            if (e is ApiException { RetryAfterSeconds: int retry })
                http.Response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await Write(http, status, message, param);
        }
    }

    /// <summary>The status, message and param an exception becomes; a 500 is logged with its stack.</summary>
    public static (int Status, string Message, string? Param) Classify(HttpContext http, Exception e)
    {
        var (status, param) = e switch
        {
            ApiException a => (a.Status, a.Param),
            // Kestrel's limits (body size, read timeouts) surface as its bad-request exception.
            BadHttpRequestException b => (b.StatusCode, null),
            OpenAiRequestException o => (400, o.Param),
            // The decode request's KV could not be pulled from its producer: a retry (prefill again) can succeed.
            Pagoda.Engine.RequestFailedException { InnerException: Pagoda.KvTransfer.KvTransferException } => (503, null),
            ArgumentException or JsonException or JinjaException => (400, null),
            _ => (500, (string?)null),
        };
        if (status == 500)
            http.RequestServices.GetService<ILogger<ServerContext>>()?.LogError(e, "Request failed");
        string message = e is Pagoda.Engine.RequestFailedException { InnerException: Pagoda.KvTransfer.KvTransferException kv } ? kv.Message : e.Message;
        return (status, status == 500 ? $"Internal server error: {message}" : message, param);
    }

    /// <summary>The error body as JSON (for a stream that already started, where the status cannot change).</summary>
    public static string Json(int status, string message, string? param = null) =>
        JsonSerializer.Serialize(new ErrorBody(new ErrorDetail(message, TypeOf(status), param, status)), ServerJsonContext.Relaxed.ErrorBody);
}
