using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Pagoda.OpenAi;

namespace Pagoda.Server.Endpoints;

/// <summary>/v1/completions and /v1/chat/completions, whole or streamed; a disconnect aborts the engine request.</summary>
internal static class GenerationEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/completions", async (HttpContext http, ServerContext s) => await Completions(http, s, await ServerContext.ReadBody(http)));
        app.MapPost("/v1/chat/completions", async (HttpContext http, ServerContext s) => await Chat(http, s, await ServerContext.ReadBody(http)));
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    // Admission checks (load, length, vocabulary) before any bytes go out, so they become 4xx/503s, not broken streams.
    private static PromptInput Admit(ServerContext s, PromptInput prompt, SamplingParams p, int? requestedMaxTokens)
    {
        // Bounded queue: beyond --max-waiting-requests the client is told to come back rather than wait unboundedly.
        if (s.Options.MaxWaitingRequests is int max && s.Engine.NumWaiting >= max)
            throw new ApiException(503, $"The server is overloaded: {s.Engine.NumWaiting} requests are waiting (--max-waiting-requests {max}). Retry later.",
                retryAfterSeconds: 1);
        return Prepare(s, prompt, p, requestedMaxTokens);
    }

    /// <summary>
    /// The checks of admission that do not depend on load (vocabulary, grammar, length) and the tokenized prompt: what
    /// generation sees, and what the render routes return.
    /// </summary>
    internal static PromptInput Prepare(ServerContext s, PromptInput prompt, SamplingParams p, int? requestedMaxTokens)
    {
        p.ValidateTokenIds(s.Model.Folder.Config.VocabSize);
        // Compiled here, off the engine's loop, so a bad schema is a 400 and the loop finds the grammar cached.
        if (p.StructuredOutputs is { } so)
            s.Model.CompileGrammar(so);
        var tokenized = SamplingParamsReader.Tokenize(s.Model, prompt, requestedMaxTokens);
        // The instance's KV transfer role and the producer's prompt length, before a stream starts.
        s.Model.CheckKvTransferParams(p, tokenized.TokenIds!.Count);
        return tokenized;
    }

    public static async Task<IResult> Chat(HttpContext http, ServerContext s, JsonObject body)
    {
        string model = s.CheckModel(body);
        var job = ChatCompletionsApi.Parse(body, s.Model, s.Options.Chat);
        s.LogIgnoredFields(job.IgnoredFields);
        var prompt = Admit(s, job.Prompt, job.Params, job.MaxTokens);
        string id = ServerContext.RequestId(http, "chatcmpl");
        long created = Now;
        s.LogRequest(id, prompt, job.Params);
        var ct = http.RequestAborted;
        if (!job.Stream)
        {
            var final = await Run(s, id, prompt, job.Params, ct);
            s.LogOutput(id, final.Outputs.Select(o => o.Text));
            return ServerContext.JsonBody(ChatCompletionsApi.Response(id, model, created, job, final, s.Model));
        }
        var stream = new ChatCompletionStream(id, model, created, job, s.Model);
        return new SseResult(async send =>
        {
            using var timer = s.Metrics.Start();
            foreach (var chunk in stream.Start())
                await send(chunk);
            await foreach (var o in s.Engine.GenerateAsync(id, prompt, job.Params with { OutputKind = RequestOutputKind.Delta }, ct))
            {
                timer.Tokens(o.Outputs.Sum(c => c.TokenIds.Count));
                foreach (var chunk in stream.Next(o))
                    await send(chunk);
                if (o.Finished)
                    timer.Finished(o.Outputs.Select(c => c.FinishReason).LastOrDefault() ?? "stop");
            }
            if (stream.Usage() is { } usage)
                await send(usage);
        });
    }

    public static async Task<IResult> Completions(HttpContext http, ServerContext s, JsonObject body)
    {
        string model = s.CheckModel(body);
        var job = CompletionsApi.Parse(body, s.Model);
        s.LogIgnoredFields(job.IgnoredFields);
        var prompts = job.Prompts.Select(p => Admit(s, p, job.Params, job.MaxTokens)).ToList();
        string id = ServerContext.RequestId(http, "cmpl");
        long created = Now;
        for (int i = 0; i < prompts.Count; i++)
            s.LogRequest($"{id}-{i}", prompts[i], job.Params);
        var ct = http.RequestAborted;
        if (!job.Stream)
        {
            var finals = await Task.WhenAll(prompts.Select((p, i) => Run(s, $"{id}-{i}", p, job.Params, ct)));
            s.LogOutput(id, finals.SelectMany(f => f.Outputs.Select(o => o.Text)));
            return ServerContext.JsonBody(CompletionsApi.Response(id, model, created, job, finals, s.Model));
        }
        var stream = new CompletionStream(id, model, created, job, s.Model);
        return new SseResult(async send =>
        {
            // Every prompt streams through one channel so chunks are written (and numbered) from one place.
            var merged = Channel.CreateUnbounded<(int Prompt, RequestOutput Output)>();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var pumps = prompts.Select((p, i) => Task.Run(async () =>
            {
                using var timer = s.Metrics.Start();
                await foreach (var o in s.Engine.GenerateAsync($"{id}-{i}", p, job.Params with { OutputKind = RequestOutputKind.Delta }, linked.Token))
                {
                    timer.Tokens(o.Outputs.Sum(c => c.TokenIds.Count));
                    if (o.Finished)
                        timer.Finished(o.Outputs.Select(c => c.FinishReason).LastOrDefault() ?? "stop");
                    await merged.Writer.WriteAsync((i, o), linked.Token);
                }
            })).ToList();
            _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
            try
            {
                await foreach (var (i, o) in merged.Reader.ReadAllAsync(linked.Token))
                {
                    foreach (var chunk in stream.Next(i, o))
                        await send(chunk);
                }
            }
            finally
            {
                // A failed write (client gone) stops every prompt's request.
                linked.Cancel();
            }
            if (stream.Usage() is { } usage)
                await send(usage);
        });
    }

    /// <summary>Runs one request to the end, timing it; the client's disconnect cancels (and aborts) it.</summary>
    private static async Task<RequestOutput> Run(ServerContext s, string id, PromptInput prompt, SamplingParams p, CancellationToken ct)
    {
        using var timer = s.Metrics.Start();
        RequestOutput? last = null;
        int seen = 0;
        await foreach (var o in s.Engine.GenerateAsync(id, prompt, p with { OutputKind = RequestOutputKind.Cumulative }, ct))
        {
            int total = o.Outputs.Sum(c => c.TokenIds.Count);
            timer.Tokens(total - seen);
            seen = total;
            last = o;
        }
        if (last is not { Finished: true })
            throw new InvalidOperationException($"Request {id} ended without a final output.");
        timer.Finished(last.Outputs.Select(c => c.FinishReason).LastOrDefault() ?? "stop");
        return last;
    }
}
