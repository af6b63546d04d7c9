using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Pagoda.Server;

/// <summary>
/// With --api-key, routes need `Authorization: Bearer KEY`. Scope "inference" (the default) leaves open what a
/// router or orchestrator calls without credentials: /health, /ping, /metrics (the endpoint picker scrapes it),
/// /version and the render routes; scope "all" leaves open only /health and /ping. (vLLM guards only /v1.) Keys
/// are compared as SHA-256 digests in constant time, so neither the length nor a matching prefix shows in the timing.
/// </summary>
internal sealed class ApiKeyAuth(string apiKey, string scope)
{
    private static readonly HashSet<string> AlwaysOpen = new(StringComparer.OrdinalIgnoreCase) { "/health", "/ping" };
    private static readonly HashSet<string> InferenceOpen = new(StringComparer.OrdinalIgnoreCase)
        { "/health", "/ping", "/metrics", "/version", "/v1/completions/render", "/v1/chat/completions/render" };
    private readonly byte[] _digest = SHA256.HashData(Encoding.UTF8.GetBytes(apiKey));

    public bool IsOpen(PathString path) => (scope == "all" ? AlwaysOpen : InferenceOpen).Contains(path.Value?.TrimEnd('/') ?? "");

    public bool Accepts(string? authorization)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            return false;
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, _digest);
    }

    public async Task Handle(HttpContext http, RequestDelegate next)
    {
        // CORS preflights carry no credentials; the CORS middleware before this one answers them.
        if (IsOpen(http.Request.Path) || HttpMethods.IsOptions(http.Request.Method) || Accepts(http.Request.Headers.Authorization))
        {
            await next(http);
            return;
        }
        await ApiErrors.Write(http, 401, "Unauthorized: a valid API key is required (Authorization: Bearer KEY).");
    }
}
