using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pagoda.Engine;

namespace Pagoda.Server;

/// <summary>vLLM's periodic stats line, logged while requests are in flight or tokens were processed since the last one.</summary>
internal sealed class StatsLogger(ServerContext s, ILogger<StatsLogger> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var last = s.Engine.Stats;
        long lastTime = Stopwatch.GetTimestamp();
        using var timer = new PeriodicTimer(s.Options.StatsInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = s.Engine.Stats;
                long time = Stopwatch.GetTimestamp();
                double seconds = Stopwatch.GetElapsedTime(lastTime, time).TotalSeconds;
                if (Line(last, now, seconds) is { } line)
                    log.LogInformation("{Line}", line);
                if (SpecDecodingLine(last, now, seconds) is { } spec)
                    log.LogInformation("{Line}", spec);
                (last, lastTime) = (now, time);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The line for the interval between two snapshots, or null when the engine was idle throughout.</summary>
    public static string? Line(EngineStats before, EngineStats now, double seconds)
    {
        long prompt = now.PromptTokens - before.PromptTokens, generated = now.GenerationTokens - before.GenerationTokens;
        if (prompt == 0 && generated == 0 && now.NumRunning == 0 && now.NumWaiting == 0)
            return null;
        long queries = now.PrefixCache.QueriedTokens - before.PrefixCache.QueriedTokens;
        long hits = now.PrefixCache.HitTokens - before.PrefixCache.HitTokens;
        double hitRate = queries > 0 ? 100.0 * hits / queries : 0;
        return $"Avg prompt throughput: {prompt / seconds:F1} tokens/s, Avg generation throughput: {generated / seconds:F1} tokens/s, " +
               $"Running: {now.NumRunning} reqs, Waiting: {now.NumWaiting} reqs, KV cache usage: {100 * now.KvCacheUsage:F1}%, " +
               $"Prefix cache hit rate: {hitRate:F1}%";
    }

    /// <summary>vLLM's speculative decoding line for the interval, or null when nothing was drafted in it.</summary>
    public static string? SpecDecodingLine(EngineStats before, EngineStats now, double seconds)
    {
        if (now.SpecDecoding is not { } total || before.SpecDecoding is not { } earlier || total.NumDrafts == earlier.NumDrafts)
            return null;
        var d = total.Since(earlier);
        var perPosition = string.Join(", ", d.PerPositionAcceptanceRates.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)));
        return string.Create(CultureInfo.InvariantCulture,
            $"SpecDecoding metrics: Mean acceptance length: {d.MeanAcceptanceLength:F2}, Accepted throughput: {d.NumAcceptedTokens / seconds:F2} tokens/s, " +
            $"Drafted throughput: {d.NumDraftTokens / seconds:F2} tokens/s, Accepted: {d.NumAcceptedTokens} tokens, Drafted: {d.NumDraftTokens} tokens, " +
            $"Per-position acceptance rate: {perPosition}, Avg Draft acceptance rate: {100 * d.AcceptanceRate:F1}%");
    }
}
