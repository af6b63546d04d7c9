using System.Text.Json.Nodes;
using Pagoda.Cli;
using Pagoda.Cli.Commands;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Cli;

/// <summary>`pagoda bench latency|throughput` on a config-only folder (dummy weights, no tokenizer).</summary>
public class BenchCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = PagodaCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string ConfigOnlyFolder()
    {
        string dir = Directory.CreateTempSubdirectory("pagoda-bench-").FullName;
        File.Copy(Path.Combine(TestPaths.Model("tiny-llama"), "config.json"), Path.Combine(dir, "config.json"));
        return dir;
    }

    [Fact]
    public void LatencyWritesVllmFieldsAndRatesWithoutATokenizer()
    {
        string dir = ConfigOnlyFolder(), json = Path.Combine(dir, "lat.json");
        var (code, output, err) = Run("bench", "latency", "--model", dir, "--load-format", "dummy", "--input-len", "8", "--output-len", "4",
            "--batch-size", "2", "--num-iters", "2", "--num-iters-warmup", "0", "--output-json", json);
        Assert.True(code == 0, err);
        Assert.Contains("Avg latency:", output);
        var r = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.True((double)r["avg_latency"]! > 0);
        Assert.True((double)r["prefill_tokens_per_s"]! > 0);
        Assert.True((double)r["decode_tokens_per_s"]! > 0);
        Assert.True((long)r["weight_bytes"]! > 0);
        Assert.Equal(2, r["latencies"]!.AsArray().Count);
    }

    [Fact]
    public void ThroughputRunsInt8AndReportsTokens()
    {
        string dir = ConfigOnlyFolder(), json = Path.Combine(dir, "tp.json");
        var (code, output, err) = Run("bench", "throughput", "--model", dir, "--load-format", "dummy", "--dtype", "float16", "--quantization", "int8",
            "--input-len", "6", "--output-len", "3", "--num-prompts", "5", "--output-json", json);
        Assert.True(code == 0, err);
        Assert.Contains("Throughput:", output);
        var r = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal(5, (int)r["num_requests"]!);
        Assert.Equal(5 * 9, (long)r["total_num_tokens"]!);
        Assert.Equal("int8", (string?)r["quantization"]);
    }

    [Fact]
    public void GenerateWithoutATokenizerRefusesTextPrompts()
    {
        var (code, _, err) = Run("generate", "--model", ConfigOnlyFolder(), "--load-format", "dummy", "--skip-tokenizer-init", "--prompt", "hi");
        Assert.Equal(1, code);
        Assert.Contains("token ids", err);
    }

    /// <summary>bench serve sends vLLM's sampling flags, greedy by default, or no sampling fields at all so the server's defaults apply.</summary>
    [Fact]
    public void BenchServeSendsTheSamplingFieldsAsked()
    {
        var prompt = new System.Text.Json.Nodes.JsonArray(1, 2, 3);
        var greedy = BenchServeCommand.RequestBody(prompt, 8, true, new(null, null, null, null, false));
        Assert.Equal(0, greedy["temperature"]!.GetValue<double>());
        Assert.Null(greedy["top_p"]);
        var sampled = BenchServeCommand.RequestBody(prompt, 8, false, new(0.7, 0.8, 20, 0.05, false));
        Assert.Equal([0.7, 0.8, 0.05], new[] { "temperature", "top_p", "min_p" }.Select(k => sampled[k]!.GetValue<double>()));
        Assert.Equal(20, sampled["top_k"]!.GetValue<int>());
        var server = BenchServeCommand.RequestBody(prompt, 8, false, new(null, null, null, null, true));
        Assert.DoesNotContain(server, p => p.Key is "temperature" or "top_p" or "top_k" or "min_p");
        Assert.Throws<ArgumentException>(() => BenchServeCommand.RequestBody(prompt, 8, false, new(0.5, null, null, null, true)));
    }

    [Theory]
    [InlineData("VmHWM:\t    1234 kB", 1234L * 1024)]
    [InlineData("VmHWM:\t64123456 kB", 64123456L * 1024)]   // no padding left: what a 61 GB process printed on the GPU box
    public void PeakRssLineParsesWithOrWithoutPadding(string line, long bytes) => Assert.Equal(bytes, Pagoda.Cli.Commands.BenchCommand.VmHwmBytes(line));
}
