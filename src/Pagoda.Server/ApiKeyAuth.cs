using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Pagoda.Server;

/// <summary>
/// With --api-key, every route except /health and /ping needs `Authorization: Bearer KEY` (unlike vLLM, which
/// guards only /v1). Keys are compared as SHA-256 digests in constant time, so neither the length nor a
/// matching prefix shows in the timing.
/// </summary>
internal sealed class ApiKeyAuth(string apiKey)
{
    private static readonly HashSet<string> Open = new(StringComparer.OrdinalIgnoreCase) { "/health", "/ping" };
    private readonly byte[] _digest = SHA256.HashData(Encoding.UTF8.GetBytes(apiKey));

    public static bool IsOpen(PathString path) => Open.Contains(path.Value?.TrimEnd('/') ?? "");

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
