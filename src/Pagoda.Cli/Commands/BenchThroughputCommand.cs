using System.CommandLine;
using System.Diagnostics;
using Pagoda.Loading.Hub;
using static Pagoda.Cli.Commands.BenchCommand;

namespace Pagoda.Cli.Commands;

/// <summary>`pagoda bench throughput`: many random prompts through continuous batching; vLLM's report.</summary>
internal static class BenchThroughputCommand
{
    public static Command Create(HubSettings hub, bool terminal)
    {
        var engine = new EngineOptions();
        var inputLen = new Option<int>("--input-len") { Description = "Prompt tokens.", DefaultValueFactory = _ => 128 };
        var outputLen = new Option<int>("--output-len") { Description = "Generated tokens per prompt.", DefaultValueFactory = _ => 128 };
        var numPrompts = new Option<int>("--num-prompts") { Description = "Prompts to process.", DefaultValueFactory = _ => 100 };
        var outputJson = new Option<string?>("--output-json") { Description = "Write the results to this JSON file." };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature (default 1.0 with top-p 1.0, as vLLM's bench; 0: greedy).", DefaultValueFactory = _ => 1.0 };

        var cmd = new Command("throughput", "Offline throughput over random token prompts.");
        engine.AddTo(cmd);
        foreach (var o in new Option[] { inputLen, outputLen, numPrompts, outputJson, temperature })
            cmd.Add(o);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            int inLen = r.GetValue(inputLen), outLen = r.GetValue(outputLen), count = r.GetValue(numPrompts);
            if (inLen < 1 || outLen < 1 || count < 1)
                throw new ArgumentException("--input-len, --output-len and --num-prompts must be at least 1.");
            using var llm = new LLM(Bind(engine, r, hub, terminal));
            var e = llm.Engine;
            r.InvocationConfiguration.Error.WriteLine($"INFO {e.KvCacheInfo}; {e.NumThreads} threads; weights {e.WeightBytes / 1e6:F1} MB");
            var prompts = RandomPrompts(count, inLen, e.Folder.Config.VocabSize, seed: 0);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < count; i++)
                e.AddRequest($"tp-{i}", prompts[i], BenchSampling(outLen, seed: i) with { Temperature = r.GetValue(temperature) });
            RunToCompletion(e, count);
            double elapsed = sw.Elapsed.TotalSeconds;
            long total = (long)count * (inLen + outLen);
            r.InvocationConfiguration.Output.WriteLine(
                $"Throughput: {F(count / elapsed)} requests/s, {F(total / elapsed)} total tokens/s, {F((double)count * outLen / elapsed)} output tokens/s");
            if (BenchSpecDecoding.Line(e.SpecDecodingStats) is { } spec)
                r.InvocationConfiguration.Output.WriteLine(spec);
            var json = Header(e);
            json["input_len"] = inLen;
            json["output_len"] = outLen;
            json["elapsed_time"] = elapsed;
            json["num_requests"] = count;
            json["total_num_tokens"] = total;
            json["requests_per_second"] = count / elapsed;
            json["tokens_per_second"] = total / elapsed;
            json["output_tokens_per_second"] = (double)count * outLen / elapsed;
            json["peak_rss_bytes"] = PeakRssBytes();
            WriteJson(r.GetValue(outputJson), json);
            return 0;
        }));
        return cmd;
    }
}
