using System.CommandLine;
using Pagoda.Cli.Commands;

namespace Pagoda.Cli;

/// <summary>The `pagoda` command tree; Program runs it on the console, tests on string writers.</summary>
public static class PagodaCli
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("Pagoda: LLM inference and serving on CPUs and NVIDIA GPUs.");
        // Progress bars only on a real terminal, never into files or pipes.
        bool interactive = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
        root.Add(GenerateCommand.Create(interactive));
        root.Add(RunBatchCommand.Create(interactive));
        root.Add(TokenizeCommand.Create());
        root.Add(DetokenizeCommand.Create());
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
