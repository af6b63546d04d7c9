using System.Net;
using System.Net.Http.Headers;

namespace Pagoda.Loading.Hub;

/// <summary>A hub answered with a client error (4xx); callers turn it into a message naming the repo.</summary>
internal sealed class HubHttpException(HttpStatusCode status, string? errorCode, string? serverMessage, Uri uri)
    : Exception($"HTTP {(int)status} from {uri}")
{
    public HttpStatusCode Status { get; } = status;

    /// <summary>The Hub's X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).</summary>
    public string? ErrorCode { get; } = errorCode;

    public string? ServerMessage { get; } = serverMessage;
}

/// <summary>The network failed, or the server kept failing (5xx/429), on every attempt.</summary>
internal sealed class HubUnreachableException(string message, Exception? inner) : Exception(message, inner);

/// <summary>
/// HTTP for hub clients: retries with exponential backoff on network errors, timeouts, 429 and 5xx (as
/// huggingface_hub's http_backoff), resumable downloads with Range, and redirects followed by hand so
/// a HEAD can read the Hub's own headers before its redirect to the LFS CDN, and so the token is only
/// ever sent to the hub's own host.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private readonly HttpClient _client;
    private readonly HubSettings _settings;
    private readonly string? _token;
    private readonly string _tokenAuthority;

    public HubHttp(HubSettings settings, string endpoint, string? token)
    {
        _settings = settings;
        _token = token;
        _tokenAuthority = new Uri(endpoint).GetLeftPart(UriPartial.Authority);
        _client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = settings.MetadataTimeout,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd("pagoda/0.1");
    }

    /// <summary>
    /// Sends until a non-retryable answer: 2xx (or a redirect to another host, when
    /// <paramref name="stopAtAbsoluteRedirect"/>) is returned, 4xx throws <see cref="HubHttpException"/>.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, bool stopAtAbsoluteRedirect, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(_settings.MetadataTimeout);
                var response = await SendFollowingAsync(method, uri, null, stopAtAbsoluteRedirect, timeout.Token);
                if (!IsRetryable(response.StatusCode))
                    return ThrowOnClientError(response, uri);
                response.Dispose();
                if (attempt >= _settings.MaxAttempts)
                    throw new HubUnreachableException($"{uri.GetLeftPart(UriPartial.Authority)} answered HTTP {(int)response.StatusCode} {attempt} times", null);
            }
            catch (Exception e) when (IsNetworkFailure(e, ct))
            {
                if (attempt >= _settings.MaxAttempts)
                    throw new HubUnreachableException($"could not reach {uri.GetLeftPart(UriPartial.Authority)} after {attempt} attempts ({Describe(e)})", e);
            }
            await Task.Delay(Backoff(attempt), ct);
        }
    }

    /// <summary>
    /// Downloads <paramref name="uri"/> into <paramref name="partialPath"/>, resuming from the bytes already
    /// there (HTTP Range), retrying with backoff when the connection fails or stalls.
    /// </summary>
    public async Task DownloadAsync(Uri uri, string partialPath, long? expectedSize, Action<long> onBytes, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            long have = File.Exists(partialPath) ? new FileInfo(partialPath).Length : 0;
            if (expectedSize is long size && have > size)
            {
                onBytes(-have);
                File.Delete(partialPath);
                have = 0;
            }
            if (expectedSize == have)
                return;
            try
            {
                using var headers = CancellationTokenSource.CreateLinkedTokenSource(ct);
                headers.CancelAfter(_settings.DownloadTimeout);
                using var response = await SendFollowingAsync(HttpMethod.Get, uri,
                    have > 0 ? new RangeHeaderValue(have, null) : null, stopAtAbsoluteRedirect: false, headers.Token);
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    onBytes(-have);
                    File.Delete(partialPath);
                    continue;
                }
                if (IsRetryable(response.StatusCode))
                    throw new HttpRequestException($"HTTP {(int)response.StatusCode}", null, response.StatusCode);
                ThrowOnClientError(response, uri);
                bool append = response.StatusCode == HttpStatusCode.PartialContent;
                if (!append && have > 0)
                    onBytes(-have); // the server ignored the range: start over
                await using var file = new FileStream(partialPath, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                var buffer = new byte[1 << 16];
                while (true)
                {
                    using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    stall.CancelAfter(_settings.DownloadTimeout);
                    int n = await body.ReadAsync(buffer, stall.Token);
                    if (n == 0)
                        break;
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                    onBytes(n);
                }
                await file.FlushAsync(ct);
                if (expectedSize is long expected && file.Length != expected)
                    throw new IOException($"the connection closed after {file.Length} of {expected} bytes");
                return;
            }
            catch (Exception e) when (IsNetworkFailure(e, ct) || e is HttpRequestException)
            {
                if (attempt >= _settings.MaxAttempts)
                    throw new HubUnreachableException($"downloading {uri.GetLeftPart(UriPartial.Path)} failed {attempt} times ({Describe(e)})", e);
            }
            await Task.Delay(Backoff(attempt), ct);
        }
    }

    private async Task<HttpResponseMessage> SendFollowingAsync(HttpMethod method, Uri uri, RangeHeaderValue? range,
        bool stopAtAbsoluteRedirect, CancellationToken ct)
    {
        for (int hops = 0; ; hops++)
        {
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.AcceptEncoding.ParseAdd("identity");
            request.Headers.Range = range;
            if (_token != null && uri.GetLeftPart(UriPartial.Authority) == _tokenAuthority)
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            int code = (int)response.StatusCode;
            if (code is < 300 or >= 400 || response.Headers.Location is not { } location || hops >= 10)
                return response;
            // Relative redirects (a renamed repo) are always followed; absolute ones go to the LFS CDN.
            if (location.IsAbsoluteUri && stopAtAbsoluteRedirect)
                return response;
            response.Dispose();
            uri = location.IsAbsoluteUri ? location : new Uri(uri, location);
        }
    }

    private static HttpResponseMessage ThrowOnClientError(HttpResponseMessage response, Uri uri)
    {
        int code = (int)response.StatusCode;
        if (code is < 400 or >= 500)
            return response;
        string? errorCode = response.Headers.TryGetValues("X-Error-Code", out var c) ? c.FirstOrDefault() : null;
        string? message = response.Headers.TryGetValues("X-Error-Message", out var m) ? m.FirstOrDefault() : null;
        response.Dispose();
        throw new HubHttpException(response.StatusCode, errorCode, message, uri);
    }

    private static bool IsRetryable(HttpStatusCode status) => status == HttpStatusCode.TooManyRequests || (int)status >= 500;

    private static bool IsNetworkFailure(Exception e, CancellationToken ct) =>
        e is HttpRequestException or IOException or TimeoutException || (e is OperationCanceledException && !ct.IsCancellationRequested);

    private static string Describe(Exception e) => e is OperationCanceledException ? "timed out" : e.Message;

    private TimeSpan Backoff(int attempt) =>
        TimeSpan.FromTicks(Math.Min(_settings.RetryDelay.Ticks << Math.Min(attempt - 1, 20), TimeSpan.FromSeconds(8).Ticks));

    public void Dispose() => _client.Dispose();
}
