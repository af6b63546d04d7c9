using Pagoda.Loading;
using Pagoda.Tokenization.Jinja;

namespace Pagoda.Cli.Commands;

/// <summary>Turns the errors a user can cause into one line on stderr and exit code 1, never a stack trace.</summary>
internal static class CliErrors
{
    public static int Run(TextWriter error, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ModelLoadException or ArgumentException or PromptFileException or JinjaException
                                      or InvalidOperationException or IOException or UnauthorizedAccessException
                                      or Pagoda.Distributed.TensorParallelException)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
