using System.Text.Encodings.Web;
using System.Text.Json;

namespace Pagoda.StructuredOutput;

/// <summary>
/// The pieces of JSON every schema shares, built once per grammar: bounded whitespace, strings, numbers,
/// literals, and "any JSON value" to a fixed depth (json_object mode, {} schemas, additionalProperties: true).
/// Whitespace: between any two JSON tokens, 0 to <see cref="GrammarLimits.MaxJsonWhitespace"/> bytes of
/// space, tab, CR or LF, so both compact and pretty output fit but a model cannot emit whitespace forever.
/// </summary>
internal sealed class JsonGrammar
{
    private static readonly JsonWriterOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly Dictionary<int, int> _anyValue = [];
    private int _string = -1, _number = -1, _integer = -1;

    public JsonGrammar(GrammarBuilder builder)
    {
        B = builder;
        Ws = X.Rep(X.OneOf(" \t\n\r"), 0, builder.Budget.Limits.MaxJsonWhitespace);
    }

    public GrammarBuilder B { get; }

    /// <summary>Optional whitespace, inlined at every gap (a rule would split each state in two).</summary>
    public Expr Ws { get; }

    /// <summary>Characters a JSON string may hold unescaped: anything from U+0020 but '"' and '\'.</summary>
    public static CodePointSet UnescapedChars { get; } =
        CodePointSet.Of((0x20, CodePointSet.MaxCodePoint)).Intersect(CodePointSet.Of(('"', '"'), ('\\', '\\')).Complement());

    /// <summary>One character of a JSON string's content: unescaped, or a short or \uXXXX escape.</summary>
    public Expr StringChar { get; } = X.Alt(
        UnescapedChars.ToExpr(),
        X.Seq(X.Byte('\\'), X.Alt(X.OneOf("\"\\/bfnrt"),
            X.Seq(X.Byte('u'), X.Rep(X.Alt(X.Digit, X.Range('a', 'f'), X.Range('A', 'F')), 4, 4)))));

    /// <summary>A quoted string of min to max characters (max &lt; 0: unbounded).</summary>
    public Expr QuotedString(int min, int max) =>
        X.Seq(X.Byte('"'), X.Rep(StringChar, min, max), X.Byte('"'));

    /// <summary>
    /// A quoted string other than the given names, so extra members cannot repeat a declared property.
    /// Exact for names written unescaped; a name spelled with escapes (a) is not recognised, and names
    /// that need escaping or are longer than 256 characters are not excluded. Built as a trie over the
    /// names' characters, iteratively (names come from the request).
    /// </summary>
    public Expr StringExcept(IEnumerable<string> names)
    {
        var trie = new List<(Dictionary<int, int> Children, bool End)> { ([], false) };
        foreach (var name in names)
        {
            if (name.Length > 256 || name.Any(c => c is '"' or '\\' or < ' ')) continue;
            int node = 0;
            foreach (var rune in name.EnumerateRunes())
            {
                if (!trie[node].Children.TryGetValue(rune.Value, out int child))
                {
                    trie.Add(([], false));
                    child = trie[node].Children[rune.Value] = trie.Count - 1;
                }
                node = child;
            }
            trie[node] = (trie[node].Children, true);
        }
        var escape = X.Seq(X.Byte('\\'), X.Alt(X.OneOf("\"\\/bfnrt"),
            X.Seq(X.Byte('u'), X.Rep(X.Alt(X.Digit, X.Range('a', 'f'), X.Range('A', 'F')), 4, 4))));
        var rest = X.Seq(X.Rep(StringChar, 0, -1), X.Byte('"'));
        // Children are built before parents: trie nodes are numbered in creation order, parents first.
        var exprs = new Expr[trie.Count];
        for (int n = trie.Count - 1; n >= 0; n--)
        {
            var (children, end) = trie[n];
            var other = new CodePointSet().AddAll(UnescapedChars);
            var branches = new List<Expr>();
            foreach (var (c, child) in children)
            {
                other = other.Intersect(CodePointSet.Single(c).Complement());
                branches.Add(X.Seq(CodePointSet.Single(c).ToExpr(), exprs[child]));
            }
            branches.Add(X.Seq(X.Alt(other.ToExpr(), escape), rest));
            if (!end) branches.Add(X.Byte('"'));
            exprs[n] = X.Alt(branches.ToArray());
        }
        return X.Seq(X.Byte('"'), exprs[0]);
    }

    /// <summary>Any JSON string, as a shared rule.</summary>
    public Expr AnyString => X.Ref(_string >= 0 ? _string : _string = B.Add("json_string", QuotedString(0, -1)));

    public Expr AnyNumber => X.Ref(_number >= 0 ? _number : _number = B.Add("json_number", JsonNumbers.Number(null, null, false, false)));

    public Expr AnyInteger => X.Ref(_integer >= 0 ? _integer : _integer = B.Add("json_integer", JsonNumbers.Integer(null, null)));

    public static Expr Boolean { get; } = X.Alt(X.Lit("true"), X.Lit("false"));

    public static Expr Null { get; } = X.Lit("null");

    /// <summary>
    /// Any JSON value nested at most <paramref name="depth"/> containers deep; one rule per depth, so the
    /// grammar stays regular in depth and finite.
    /// </summary>
    public Expr AnyValue(int depth)
    {
        if (_anyValue.TryGetValue(depth, out int rule)) return X.Ref(rule);
        rule = B.Declare("json_value_" + depth);
        _anyValue[depth] = rule;
        var scalars = new List<Expr> { AnyString, AnyNumber, Boolean, Null };
        if (depth > 0)
        {
            scalars.Add(AnyObject(depth));
            scalars.Add(Container('[', ']', AnyValue(depth - 1)));
        }
        B.Define(rule, X.Alt(scalars.ToArray()));
        return X.Ref(rule);
    }

    /// <summary>An object of any members whose values nest at most depth - 1 deeper.</summary>
    public Expr AnyObject(int depth) =>
        Container('{', '}', X.Seq(AnyString, Ws, X.Byte(':'), Ws, AnyValue(depth - 1)));

    /// <summary>open ws (item (ws , ws item)* ws)? close.</summary>
    public Expr Container(char open, char close, Expr item) => X.Seq(
        X.Byte(open), Ws,
        X.Opt(X.Seq(item, X.Star(X.Seq(Ws, X.Byte(','), Ws, item)), Ws)),
        X.Byte(close));

    /// <summary>The separator between members or elements.</summary>
    public Expr Comma => X.Seq(Ws, X.Byte(','), Ws);

    /// <summary>A JSON value written compactly, as the exact bytes the output must contain.</summary>
    public Expr Literal(JsonElement value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Compact)) value.WriteTo(w);
        B.Budget.AddLiteralBytes(buffer.WrittenCount);
        return X.Lit(buffer.WrittenSpan.ToArray());
    }

    /// <summary>A property name as a JSON string literal.</summary>
    public Expr Key(string name)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Compact)) w.WriteStringValue(name);
        B.Budget.AddLiteralBytes(buffer.WrittenCount);
        return X.Lit(buffer.WrittenSpan.ToArray());
    }
}
