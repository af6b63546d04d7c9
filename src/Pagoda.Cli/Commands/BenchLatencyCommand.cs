using System.CommandLine;
using System.Text.Json.Nodes;
using Pagoda.Loading.Hub;
using static Pagoda.Cli.Commands.BenchCommand;

namespace Pagoda.Cli.Commands;

/// <summary>
/// `pagoda bench latency`: one batch of random prompts generated to a fixed length, repeated; reports
/// vLLM's avg_latency and percentiles plus prefill and decode token rates.
/// </summary>
internal static class BenchLatencyCommand
{
    public static Command Create(HubSettings hub, bool terminal)
    {
        var engine = new EngineOptions();
        var inputLen = new Option<int>("--input-len") { Description = "Prompt tokens.", DefaultValueFactory = _ => 32 };
        var outputLen = new Option<int>("--output-len") { Description = "Generated tokens.", DefaultValueFactory = _ => 128 };
        var batchSize = new Option<int>("--batch-size") { Description = "Prompts in the batch.", DefaultValueFactory = _ => 8 };
        var warmup = new Option<int>("--num-iters-warmup") { Description = "Untimed iterations first.", DefaultValueFactory = _ => 1 };
        var iters = new Option<int>("--num-iters") { Description = "Timed iterations.", DefaultValueFactory = _ => 5 };
        var outputJson = new Option<string?>("--output-json") { Description = "Write the results to this JSON file." };

        var cmd = new Command("latency", "Latency of one batch: prefill and decode rates over random token prompts.");
        engine.AddTo(cmd);
        foreach (var o in new Option[] { inputLen, outputLen, batchSize, warmup, iters, outputJson })
            cmd.Add(o);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            int inLen = r.GetValue(inputLen), outLen = r.GetValue(outputLen), batch = r.GetValue(batchSize), n = r.GetValue(iters);
            if (inLen < 1 || outLen < 1 || batch < 1 || n < 1 || r.GetValue(warmup) < 0)
                throw new ArgumentException("--input-len, --output-len, --batch-size and --num-iters must be at least 1.");
            var log = r.InvocationConfiguration.Error;
            using var llm = new LLM(Bind(engine, r, hub, terminal));
            var e = llm.Engine;
            log.WriteLine($"INFO {e.KvCacheInfo}; {e.NumThreads} threads; weights {e.WeightBytes / 1e6:F1} MB");

            var results = new List<(double Total, double Prefill)>();
            for (int it = -r.GetValue(warmup); it < n; it++)
            {
                // Fresh prompts every iteration, so the prefix cache never skips a prefill.
                var prompts = RandomPrompts(batch, inLen, e.Folder.Config.VocabSize, seed: 1000 + it);
                for (int i = 0; i < batch; i++)
                    e.AddRequest($"lat-{it}-{i}", prompts[i], BenchSampling(outLen, seed: i));
                var (prefill, total) = RunToCompletion(e, batch);
                if (it < 0)
                    continue;
                results.Add((total, prefill));
                log.WriteLine($"iteration {it + 1}/{n}: {F(total, 3)} s (prefill {F(prefill, 3)} s)");
            }

            double[] latencies = results.Select(x => x.Total).Order().ToArray();
            double[] prefillRates = results.Select(x => batch * inLen / x.Prefill).ToArray();
            double[] decodeRates = results.Select(x => outLen > 1 ? batch * (outLen - 1) / (x.Total - x.Prefill) : 0).ToArray();
            var output = r.InvocationConfiguration.Output;
            output.WriteLine($"Avg latency: {F(latencies.Average(), 4)} seconds");
            foreach (int p in new[] { 10, 25, 50, 75, 90, 99 })
                output.WriteLine($"{p}% percentile latency: {F(Percentile(latencies, p), 4)} seconds");
            output.WriteLine($"Prefill: {F(Median(prefillRates))} tok/s, decode: {F(Median(decodeRates))} tok/s (medians; batch {batch}, {inLen} in, {outLen} out)");
            if (BenchSpecDecoding.Line(e.SpecDecodingStats) is { } spec)
                output.WriteLine(spec);
            output.WriteLine($"Peak RSS: {PeakRssBytes() / 1e6:F0} MB");

            var json = Header(e);
            json["input_len"] = inLen;
            json["output_len"] = outLen;
            json["batch_size"] = batch;
            json["avg_latency"] = latencies.Average();
            json["latencies"] = new JsonArray(results.Select(x => (JsonNode)x.Total).ToArray());
            json["percentiles"] = new JsonObject(new[] { 10, 25, 50, 75, 90, 99 }
                .Select(p => KeyValuePair.Create(p.ToString(System.Globalization.CultureInfo.InvariantCulture), (JsonNode?)Percentile(latencies, p))));
            json["prefill_tokens_per_s"] = Median(prefillRates);
            json["decode_tokens_per_s"] = Median(decodeRates);
            json["prefill_tokens_per_s_runs"] = new JsonArray(prefillRates.Select(x => (JsonNode)x).ToArray());
            json["decode_tokens_per_s_runs"] = new JsonArray(decodeRates.Select(x => (JsonNode)x).ToArray());
            json["peak_rss_bytes"] = PeakRssBytes();
            WriteJson(r.GetValue(outputJson), json);
            return 0;
        }));
        return cmd;
    }
}
