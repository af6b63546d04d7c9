using System.CommandLine;

namespace Pagoda.Cli.Commands;

/// <summary>`pagoda bench`: benchmarks (vLLM's `vllm bench`); each kind is a subcommand.</summary>
internal static class BenchCommand
{
    public static Command Create(IReadOnlyDictionary<string, string?>? environment)
    {
        var cmd = new Command("bench", "Benchmark Pagoda.");
        cmd.Add(BenchServeCommand.Create(environment));
        return cmd;
    }
}
