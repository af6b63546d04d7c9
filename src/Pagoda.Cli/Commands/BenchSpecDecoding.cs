using System.Globalization;
using System.Text.Json.Nodes;
using Pagoda.SpecDecode;

namespace Pagoda.Cli.Commands;

/// <summary>
/// Speculative decoding in benchmark outputs: `bench serve` reads the server's spec_decode counters (vLLM's) from /metrics
/// before and after the run; the in-process benchmarks read the engine's counters.
/// </summary>
internal static class BenchSpecDecoding
{
    /// <summary>The server's counters (summed over replicas), or null when it has none (no --speculative-config) or no /metrics.</summary>
    public static SpecDecodingStats? Scrape(HttpClient http)
    {
        string text;
        try
        {
            text = http.GetStringAsync("/metrics").GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
        long drafts = 0, draftTokens = 0, accepted = 0;
        var perPos = new SortedDictionary<int, long>();
        bool any = false;
        foreach (var line in text.Split('\n'))
        {
            // The metric prefix is the server's (pagoda, or vllm for dashboards built on vLLM's names).
            int colon = line.IndexOf(':');
            if (line.StartsWith('#') || colon < 0 || !line.AsSpan(colon + 1).StartsWith("spec_decode_", StringComparison.Ordinal))
                continue;
            int space = line.LastIndexOf(' ');
            long value = (long)double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            string name = line[(colon + 1)..Math.Max(colon + 1, line.IndexOfAny(['{', ' ']))];
            any = true;
            switch (name)
            {
                case "spec_decode_num_drafts_total": drafts += value; break;
                case "spec_decode_num_draft_tokens_total": draftTokens += value; break;
                case "spec_decode_num_accepted_tokens_total": accepted += value; break;
                case "spec_decode_num_accepted_tokens_per_pos_total":
                    int at = line.IndexOf("position=\"", StringComparison.Ordinal) + 10;
                    int pos = int.Parse(line[at..line.IndexOf('"', at)], CultureInfo.InvariantCulture);
                    perPos[pos] = perPos.GetValueOrDefault(pos) + value;
                    break;
            }
        }
        return any ? new SpecDecodingStats(perPos.Count, drafts, draftTokens, accepted, [.. perPos.Values]) : null;
    }

    /// <summary>vLLM's section of the serving result, and its keys in the JSON report.</summary>
    public static void Report(TextWriter w, JsonObject report, SpecDecodingStats? before, SpecDecodingStats? after)
    {
        if (before == null || after == null || after.NumDrafts == before.NumDrafts)
            return;
        var d = after.Since(before);
        report["spec_decode_acceptance_rate"] = 100 * d.AcceptanceRate;
        report["spec_decode_acceptance_length"] = d.MeanAcceptanceLength;
        report["spec_decode_num_drafts"] = d.NumDrafts;
        report["spec_decode_draft_tokens"] = d.NumDraftTokens;
        report["spec_decode_accepted_tokens"] = d.NumAcceptedTokens;
        w.WriteLine("---------------Speculative Decoding---------------");
        w.WriteLine($"{"Acceptance rate (%):",-40}{F(100 * d.AcceptanceRate)}");
        w.WriteLine($"{"Acceptance length:",-40}{F(d.MeanAcceptanceLength)}");
        w.WriteLine($"{"Drafts:",-40}{d.NumDrafts}");
        w.WriteLine($"{"Draft tokens:",-40}{d.NumDraftTokens}");
        w.WriteLine($"{"Accepted tokens:",-40}{d.NumAcceptedTokens}");
        w.WriteLine($"{"Per-position acceptance (%):",-40}{string.Join(", ", d.PerPositionAcceptanceRates.Select(r => F(100 * r)))}");
        w.WriteLine("==================================================");
    }

    /// <summary>The in-process benchmarks' line (null without speculation or drafts).</summary>
    public static string? Line(SpecDecodingStats? s) => s is { NumDrafts: > 0 }
        ? $"Speculative decoding: mean acceptance length {F(s.MeanAcceptanceLength)}, acceptance rate {F(100 * s.AcceptanceRate)}% ({s.NumDrafts} drafts, {s.NumDraftTokens} draft tokens, {s.NumAcceptedTokens} accepted)"
        : null;

    private static string F(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
}
