using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pagoda.Engine;
using Pagoda.Server.Endpoints;

namespace Pagoda.Server;

/// <summary>
/// The OpenAI-compatible HTTP server over an <see cref="IEngineClient"/>: one engine, or data-parallel replicas (what `vllm serve` runs). SIGTERM or
/// Ctrl-C stops accepting connections and lets in-flight requests finish, up to
/// <see cref="ServerOptions.ShutdownTimeout"/>. The caller owns (and disposes) the engine.
/// </summary>
public sealed class PagodaServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServerContext _context;

    private PagodaServer(WebApplication app)
    {
        _app = app;
        _context = app.Services.GetRequiredService<ServerContext>();
    }

    /// <summary>Builds the server; <paramref name="log"/> receives vLLM-style log lines (default: stderr).</summary>
    public static PagodaServer Create(ServerOptions options, IEngineClient engine, TextWriter? log = null)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new LineLoggerProvider(log ?? Console.Error));
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.WebHost.ConfigureKestrel(k =>
        {
            var ip = options.Host switch
            {
                "localhost" => IPAddress.Loopback,
                "" or "0.0.0.0" => IPAddress.Any,
                var h => IPAddress.TryParse(h, out var a) ? a : throw new ArgumentException($"--host must be an IP address, got '{h}'."),
            };
            k.Listen(ip, options.Port);
            // Explicit limits rather than Kestrel's defaults, so they are documented and tested: bodies are
            // bounded by the option, headers by 32 KiB in at most 100 fields (larger requests get 431).
            k.Limits.MaxRequestBodySize = options.MaxRequestBodySize;
            k.Limits.MaxRequestHeadersTotalSize = 32 << 10;
            k.Limits.MaxRequestHeaderCount = 100;
            k.Limits.MaxRequestLineSize = 8 << 10;
            k.AddServerHeader = false;
        });
        builder.Services.AddSingleton(engine);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<ServerContext>();
        builder.Services.AddHostedService<StatsLogger>();
        if (options.AllowedOrigins.Count > 0)
            builder.Services.AddCors();

        var app = builder.Build();
        if (options.AllowedOrigins.Count > 0)
        {
            app.UseCors(p =>
            {
                if (options.AllowedOrigins.Contains("*"))
                    p.AllowAnyOrigin();
                else
                    p.WithOrigins([.. options.AllowedOrigins]);
                p.AllowAnyHeader().AllowAnyMethod();
            });
        }
        app.Use(ApiErrors.Handle);
        if (options.ApiKey is { } key)
            app.Use(new ApiKeyAuth(key, options.ApiKeyScope).Handle);
        GenerationEndpoints.Map(app);
        ServiceEndpoints.Map(app);
        RenderEndpoints.Map(app);
        app.MapFallback((HttpContext http) => ApiErrors.Result(404, $"No route for {http.Request.Method} {http.Request.Path}."));
        return new PagodaServer(app);
    }

    /// <summary>The routes served, as (method, path) pairs.</summary>
    public IReadOnlyList<(string Method, string Path)> Routes =>
        ((IEndpointRouteBuilder)_app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } t && !t.Contains('{'))
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, e.RoutePattern.RawText!)))
            .ToList();

    /// <summary>The address it listens on (with the real port when 0 was asked for); valid once started.</summary>
    public Uri Address
    {
        get
        {
            var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new Uri(address.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "[::1]", StringComparison.Ordinal));
        }
    }

    /// <summary>Starts listening and logs what vLLM logs at start-up.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _app.StartAsync(cancellationToken);
        var log = _app.Services.GetRequiredService<ILogger<PagodaServer>>();
        var engine = _context.Model;
        var defaults = engine.GenerationConfig;
        var fields = new (string Name, object? Value)[]
        {
            ("repetition_penalty", defaults.RepetitionPenalty), ("temperature", defaults.Temperature), ("top_k", defaults.TopK),
            ("top_p", defaults.TopP), ("min_p", defaults.MinP), ("max_tokens", defaults.MaxNewTokens),
        }.Where(f => f.Value != null).Select(f => $"'{f.Name}': {Convert.ToString(f.Value, CultureInfo.InvariantCulture)}").ToList();
        if (fields.Count > 0)
            log.LogInformation("Default sampling parameters have been overridden by the model's generation config: {{{Fields}}}. " +
                               "Start with --generation-config vllm to use Pagoda's defaults.", string.Join(", ", fields));
        log.LogInformation("{KvCache}", engine.KvCacheInfo);
        if (engine.KvConnector is { } kv)
            log.LogInformation("KV transfer: {Connector} as {Role}, engine_id {EngineId}{Listener}", kv.Config.KvConnector, kv.Config.KvRole,
                kv.Config.EngineId, kv.Port is int port ? $", serving prefills' KV on {kv.Config.KvIp}:{port}" : "");
        log.LogInformation("Serving {Names} ({Model}), max_model_len {Len}", string.Join(", ", _context.ModelNames), engine.Args.Model, engine.MaxModelLen);
        log.LogInformation("Pagoda API server running on {Address} (Press CTRL+C to quit)", Address.ToString().TrimEnd('/'));
    }

    /// <summary>Runs until SIGTERM, Ctrl-C or <paramref name="cancellationToken"/>, then shuts down gracefully.</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        await StartAsync(cancellationToken);
        await _app.WaitForShutdownAsync(cancellationToken);
    }

    /// <summary>Stops accepting, waits for in-flight requests (bounded), and stops.</summary>
    public Task StopAsync() => _app.StopAsync();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
