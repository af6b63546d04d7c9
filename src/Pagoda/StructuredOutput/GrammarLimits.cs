using System.Diagnostics;

namespace Pagoda.StructuredOutput;

/// <summary>
/// Bounds that keep hostile inputs (from API requests) from using unbounded time or memory while compiling.
/// Every bound is checked before or while the work it bounds is done, so a violation fails fast with a
/// <see cref="GrammarException"/> instead of hanging.
/// </summary>
/// <param name="MaxNesting">Deepest nesting of a schema, regex group or grammar parenthesis. Also bounds
/// the compiler's own recursion, which only ever follows input nesting.</param>
/// <param name="MaxStates">Most automaton states (NFA and DFA together) one grammar may build.</param>
/// <param name="MaxRepeat">Largest bound of a counted repetition ({m,n}, minItems, maxLength...).</param>
/// <param name="MaxEnumEntries">Most entries of one enum or choice list.</param>
/// <param name="MaxLiteralBytes">Most bytes of literals (enum values, choices, consts) in one grammar.</param>
/// <param name="MaxSourceLength">Longest schema, regex or grammar text, in characters.</param>
/// <param name="CompileBudget">Wall time one compile may take before it gives up.</param>
/// <param name="MaxJsonWhitespace">Most whitespace bytes allowed in one gap of generated JSON.</param>
/// <param name="AnyJsonDepth">Nesting depth of "any JSON value" (json_object mode, {} schemas).</param>
public sealed record GrammarLimits(
    int MaxNesting = 64,
    int MaxStates = 200_000,
    int MaxRepeat = 2_000,
    int MaxEnumEntries = 4_096,
    int MaxLiteralBytes = 256 * 1024,
    int MaxSourceLength = 1024 * 1024,
    TimeSpan? CompileBudget = null,
    int MaxJsonWhitespace = 20,
    int AnyJsonDepth = 8)
{
    /// <summary>The limits used when none are given.</summary>
    public static GrammarLimits Default { get; } = new();

    internal TimeSpan Budget => CompileBudget ?? TimeSpan.FromSeconds(2);
}

/// <summary>
/// One compile's running totals against its <see cref="GrammarLimits"/>: states built, literal bytes, and
/// the clock. Not shared between compiles.
/// </summary>
internal sealed class CompileBudget(GrammarLimits limits)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _states;
    private long _literalBytes;

    public GrammarLimits Limits { get; } = limits;

    /// <summary>Counts new states; throws when the total or the time budget is exceeded.</summary>
    public void AddStates(int count)
    {
        _states += count;
        if (_states > Limits.MaxStates)
            throw new GrammarException($"grammar too large: more than {Limits.MaxStates} automaton states");
        if ((_states & 1023) < count) CheckTime();
    }

    public void AddLiteralBytes(int count)
    {
        _literalBytes += count;
        if (_literalBytes > Limits.MaxLiteralBytes)
            throw new GrammarException($"literals too large: more than {Limits.MaxLiteralBytes} bytes of enum/const/choice text");
    }

    public void CheckTime()
    {
        if (_clock.Elapsed > Limits.Budget)
            throw new GrammarException($"grammar compile exceeded its time budget of {Limits.Budget.TotalMilliseconds:0} ms");
    }

    public void CheckRepeat(int bound)
    {
        if (bound > Limits.MaxRepeat)
            throw new GrammarException($"repetition bound {bound} exceeds the limit of {Limits.MaxRepeat}");
    }

    public void CheckNesting(int depth)
    {
        if (depth > Limits.MaxNesting)
            throw new GrammarException($"nesting deeper than {Limits.MaxNesting} levels");
    }
}
