namespace Pagoda.Tokenization.Jinja;

/// <summary>
/// A template that cannot be parsed or rendered: a syntax error, an unknown filter or test, a type error,
/// or an explicit <c>raise_exception(...)</c>. The message starts with the template line number.
/// </summary>
public sealed class JinjaException : Exception
{
    /// <summary>Creates an error at template line <paramref name="line"/> (0 when unknown).</summary>
    public JinjaException(string problem, int line, Exception? inner = null)
        : base(line > 0 ? $"line {line}: {problem}" : problem, inner)
    {
        Problem = problem;
        Line = line;
    }

    /// <summary>What went wrong, without the line prefix.</summary>
    public string Problem { get; }

    /// <summary>The 1-based template line, or 0 when unknown.</summary>
    public int Line { get; }
}
