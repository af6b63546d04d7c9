namespace Pagoda.StructuredOutput;

/// <summary>
/// A schema, regex, choice list or grammar that is invalid, uses something the engine does not support, or
/// exceeds <see cref="GrammarLimits"/>. The message names the problem so a server can return it as a 400.
/// </summary>
public sealed class GrammarException : Exception
{
    public GrammarException(string message) : base(message) { }

    public GrammarException(string message, Exception inner) : base(message, inner) { }
}
