using System.CommandLine;
using System.Text.Json;
using Pagoda.Engine;
using Pagoda.Loading.Hub;
using Pagoda.Server;

namespace Pagoda.Cli.Commands;

/// <summary>`pagoda serve [MODEL]`: the OpenAI-compatible server, with `vllm serve`'s flags.</summary>
internal static class ServeCommand
{
    public static Command Create(HubSettings hub, bool terminal, IReadOnlyDictionary<string, string?>? environment)
    {
        var engine = new EngineOptions("--seed");
        var model = new Argument<string?>("MODEL") { Description = "Model folder or Hub repo id (default: the embedded fortune-chat model).", Arity = ArgumentArity.ZeroOrOne };
        string? Env(string name) => environment != null ? environment.GetValueOrDefault(name) : Environment.GetEnvironmentVariable(name);
        // PAGODA_HOST lets a container image listen on every interface by default (it sets 0.0.0.0, as vLLM's default is).
        var host = new Option<string>("--host") { Description = "Address to listen on (default: PAGODA_HOST, else 127.0.0.1).", DefaultValueFactory = _ => Env("PAGODA_HOST") ?? "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to listen on (0: any free port).", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require `Authorization: Bearer KEY` (see --api-key-scope; default: PAGODA_API_KEY)." };
        var names = new Option<string[]>("--served-model-name") { Description = "Model name(s) clients use; the first is reported.", AllowMultipleArgumentsPerToken = true };
        var origins = new Option<string?>("--allowed-origins") { Description = "CORS origins: a JSON list such as '[\"*\"]' or a comma-separated list." };
        var enableLog = new Option<bool>("--enable-log-requests") { Description = "Log prompts, parameters and outputs." };
        var disableLog = new Option<bool>("--disable-log-requests") { Description = "Do not log prompts and outputs (the default)." };
        var metricsPrefix = new Option<string>("--metrics-prefix") { Description = "Prometheus name prefix: pagoda, or vllm for vLLM dashboards.", DefaultValueFactory = _ => "pagoda" };
        var maxWaiting = new Option<int?>("--max-waiting-requests") { Description = "Requests allowed to wait; beyond it generation gets 503 with Retry-After (default: unbounded)." };
        var shutdownTimeout = new Option<double>("--shutdown-timeout") { Description = "Seconds SIGTERM waits for in-flight requests before closing them.", DefaultValueFactory = _ => 30 };
        var maxBody = new Option<long>("--max-request-body-size") { Description = "Largest request body in bytes (larger: 413).", DefaultValueFactory = _ => 8 << 20 };
        var apiKeyScope = new Option<string>("--api-key-scope") { Description = "What --api-key guards: inference (default; /health, /ping, /metrics, /version and render routes stay open for routers) or all.", DefaultValueFactory = _ => "inference" };
        var autoTools = new Option<bool>("--enable-auto-tool-choice") { Description = "Let the model call tools (tool_choice auto); needs --tool-call-parser." };
        var toolParser = new Option<string?>("--tool-call-parser") { Description = "How the model writes tool calls: hermes, llama3_json, mistral or pythonic." };
        var pooling = new Option<PoolingType>("--pooling-type") { Description = "How /v1/embeddings pools hidden states: Last or Mean.", DefaultValueFactory = _ => PoolingType.Last };

        var cmd = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (http://127.0.0.1:8000/v1).");
        cmd.Add(model);
        engine.AddTo(cmd);
        foreach (var o in new Option[] { host, port, apiKey, names, origins, enableLog, disableLog, metricsPrefix, pooling, maxWaiting, shutdownTimeout, maxBody, autoTools, toolParser, apiKeyScope })
            cmd.Add(o);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            var error = r.InvocationConfiguration.Error;
            var options = new ServerOptions
            {
                Host = r.GetValue(host)!,
                Port = r.GetValue(port),
                ApiKey = r.GetValue(apiKey) ?? Env("PAGODA_API_KEY") ?? Env("VLLM_API_KEY"),
                ApiKeyScope = r.GetValue(apiKeyScope)!,
                ServedModelNames = r.GetValue(names) ?? [],
                AllowedOrigins = Origins(r.GetValue(origins)),
                EnableLogRequests = r.GetValue(enableLog) && !r.GetValue(disableLog),
                MetricsPrefix = r.GetValue(metricsPrefix)!,
                PoolingType = r.GetValue(pooling),
                MaxWaitingRequests = r.GetValue(maxWaiting),
                ShutdownTimeout = TimeSpan.FromSeconds(r.GetValue(shutdownTimeout)),
                MaxRequestBodySize = r.GetValue(maxBody),
                Chat = new OpenAi.ChatServingOptions { EnableAutoToolChoice = r.GetValue(autoTools), ToolCallParser = r.GetValue(toolParser) },
            };
            options.Validate();
            var args = engine.Bind(r, hub, terminal ? new TerminalProgress(error) : null, r.GetValue(model), allowHeadless: true);
            if (engine.Headless(r))   // another node's ranks for node 0's engine
                return HeadlessNode.Run(args, error);
            using IEngineClient async = args.DataParallelSize > 1 ? new DataParallelEngine(args) : new AsyncLLMEngine(new LLMEngine(args));
            var server = PagodaServer.Create(options, async, error);
            try
            {
                server.RunAsync().GetAwaiter().GetResult();
            }
            finally
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return 0;
        }));
        return cmd;
    }

    private static List<string> Origins(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return [];
        if (value.TrimStart().StartsWith('['))
        {
            try
            {
                return JsonSerializer.Deserialize<List<string>>(value) ?? [];
            }
            catch (JsonException e)
            {
                throw new ArgumentException($"--allowed-origins is not a JSON list of strings: {e.Message}");
            }
        }
        return value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
    }
}
