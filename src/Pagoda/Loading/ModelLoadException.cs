namespace Pagoda.Loading;

/// <summary>
/// A model folder, weight file, tokenizer or template that cannot be used. The message names the file
/// and the problem so the CLI can print it instead of a stack trace.
/// </summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates an error about <paramref name="path"/>.</summary>
    public ModelLoadException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The file (or folder) at fault.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}
