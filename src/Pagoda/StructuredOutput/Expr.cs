using System.Text;

namespace Pagoda.StructuredOutput;

/// <summary>
/// The one intermediate form every front end (JSON Schema, regex, choice, EBNF) compiles to: expressions over
/// byte ranges and references to other rules. Rules become per-rule automata; references become pushes.
/// Expressions are immutable and may be shared between places (the NFA builder copies them out).
/// </summary>
internal abstract class Expr
{
    /// <summary>Matches the empty string only.</summary>
    public static readonly Expr Empty = new SeqExpr([]);

    /// <summary>Matches nothing (an alternation of no branches).</summary>
    public static readonly Expr Never = new AltExpr([]);
}

/// <summary>One byte in [Lo, Hi].</summary>
internal sealed class ByteExpr(byte lo, byte hi) : Expr
{
    public byte Lo { get; } = lo;
    public byte Hi { get; } = hi;
}

internal sealed class SeqExpr(Expr[] items) : Expr
{
    public Expr[] Items { get; } = items;
}

internal sealed class AltExpr(Expr[] items) : Expr
{
    public Expr[] Items { get; } = items;
}

/// <summary>Item repeated Min to Max times; Max &lt; 0 means unbounded.</summary>
internal sealed class RepeatExpr(Expr item, int min, int max) : Expr
{
    public Expr Item { get; } = item;
    public int Min { get; } = min;
    public int Max { get; } = max;
}

/// <summary>A call of another rule (possibly recursive): the pushdown part of the automaton.</summary>
internal sealed class RefExpr(int rule) : Expr
{
    public int Rule { get; } = rule;
}

/// <summary>Short constructors, so front ends read like the grammars they build.</summary>
internal static class X
{
    public static Expr Seq(params Expr[] items) => items.Length == 1 ? items[0] : new SeqExpr(items);

    public static Expr Alt(params Expr[] items) => items.Length == 1 ? items[0] : new AltExpr(items);

    public static Expr Opt(Expr e) => new RepeatExpr(e, 0, 1);

    public static Expr Star(Expr e) => new RepeatExpr(e, 0, -1);

    public static Expr Plus(Expr e) => new RepeatExpr(e, 1, -1);

    public static Expr Rep(Expr e, int min, int max) => new RepeatExpr(e, min, max);

    public static Expr Byte(char c) => new ByteExpr((byte)c, (byte)c);

    public static Expr Range(char lo, char hi) => new ByteExpr((byte)lo, (byte)hi);

    public static Expr Ref(int rule) => new RefExpr(rule);

    /// <summary>The UTF-8 bytes of a string, in order.</summary>
    public static Expr Lit(string s) => Lit(Encoding.UTF8.GetBytes(s));

    public static Expr Lit(byte[] bytes)
    {
        var items = new Expr[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) items[i] = new ByteExpr(bytes[i], bytes[i]);
        return Seq(items);
    }

    /// <summary>Any one of the listed ASCII characters.</summary>
    public static Expr OneOf(string chars) => Alt(chars.Select(Byte).ToArray());

    public static Expr Digit => Range('0', '9');
}
