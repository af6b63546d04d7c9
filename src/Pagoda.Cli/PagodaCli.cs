using System.CommandLine;
using Pagoda.Cli.Commands;
using Pagoda.Loading.Hub;

namespace Pagoda.Cli;

/// <summary>The `pagoda` command tree; Program runs it on the console, tests on string writers.</summary>
public static class PagodaCli
{
    /// <param name="args">Command-line arguments.</param>
    /// <param name="output">Where results go.</param>
    /// <param name="error">Where errors (and, on a terminal, download progress) go.</param>
    /// <param name="environment">Environment variables (HF_ENDPOINT, HF_HOME, ...); default: this process's.</param>
    /// <param name="terminal">Whether <paramref name="error"/> is a terminal, so a progress bar may be drawn.</param>
    public static int Run(string[] args, TextWriter output, TextWriter error,
        IReadOnlyDictionary<string, string?>? environment = null, bool terminal = false)
    {
        // `vllm serve MODEL ...` (a container started with vLLM's command line, the image's `vllm` link to this
        // program, or `pagoda vllm serve ...`) runs as `pagoda serve MODEL ...`: the same words from here on.
        if (args is ["vllm", ..])
            args = args[1..];
        var hub = HubSettings.FromEnvironment(environment);
        var root = new RootCommand("Pagoda: LLM inference and serving on CPUs and NVIDIA GPUs.");
        root.Add(GenerateCommand.Create(hub, terminal));
        root.Add(RunBatchCommand.Create(hub, terminal));
        root.Add(ServeCommand.Create(hub, terminal, environment));
        root.Add(TokenizeCommand.Create());
        root.Add(DetokenizeCommand.Create());
        root.Add(BenchCommand.Create(hub, terminal, environment));
        root.Add(WorkerCommand.Create());
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
