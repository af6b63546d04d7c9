using System.Globalization;

namespace Pagoda.Tokenization.Jinja;

// Precedence, loosest first, as in Jinja: conditional, or, and, not, comparisons, + -, ~, * / // %, **,
// unary minus, then primary with postfix (. [] ()) and filters / tests.
internal sealed partial class Parser
{
    private static readonly HashSet<string> CompareOps = ["==", "!=", "<", "<=", ">", ">="];

    // An expression, or a bare tuple when commas follow ({{ a, b }}, for x in a, b).
    private Expr ParseTuple(bool withCondExpr)
    {
        var first = ParseExpression(withCondExpr);
        if (!Peek().Is(TokenKind.Op, ",")) return first;
        var items = new List<Expr> { first };
        while (AcceptOp(","))
        {
            if (IsTupleEnd()) break;
            items.Add(ParseExpression(withCondExpr));
        }
        return new TupleExpr(items, first.Line);
    }

    private bool IsTupleEnd()
    {
        var t = Peek();
        return t.Kind is TokenKind.VarEnd or TokenKind.BlockEnd or TokenKind.Eof
            || t.Is(TokenKind.Op, ")") || t.Is(TokenKind.Name, "if") || t.Is(TokenKind.Op, "=");
    }

    private Expr ParseExpression(bool withCondExpr)
    {
        var expr = ParseOr();
        if (!withCondExpr) return expr;
        while (Peek().Is(TokenKind.Name, "if"))
        {
            var t = Next();
            var test = ParseOr();
            var otherwise = AcceptName("else") ? ParseExpression(true) : null;
            expr = new CondExpr(test, expr, otherwise, t.Line);
        }
        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Peek().Is(TokenKind.Name, "or"))
        {
            var t = Next();
            left = new BinaryExpr("or", left, ParseAnd(), t.Line);
        }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Peek().Is(TokenKind.Name, "and"))
        {
            var t = Next();
            left = new BinaryExpr("and", left, ParseNot(), t.Line);
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (Peek().Is(TokenKind.Name, "not"))
        {
            var t = Next();
            return new UnaryExpr("not", ParseNot(), t.Line);
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Peek();
            if (t.Kind == TokenKind.Op && CompareOps.Contains(t.Value)) { _i++; rest.Add((t.Value, ParseMath1())); }
            else if (t.Is(TokenKind.Name, "in")) { _i++; rest.Add(("in", ParseMath1())); }
            else if (t.Is(TokenKind.Name, "not") && Peek(1).Is(TokenKind.Name, "in")) { _i += 2; rest.Add(("notin", ParseMath1())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, first.Line);
    }

    private Expr ParseBinaryLevel(Func<Expr> next, params string[] ops)
    {
        var left = next();
        while (Peek().Kind == TokenKind.Op && ops.Contains(Peek().Value))
        {
            var t = Next();
            left = new BinaryExpr(t.Value, left, next(), t.Line);
        }
        return left;
    }

    private Expr ParseMath1() => ParseBinaryLevel(ParseConcat, "+", "-");
    private Expr ParseConcat() => ParseBinaryLevel(ParseMath2, "~");
    private Expr ParseMath2() => ParseBinaryLevel(ParsePow, "*", "/", "//", "%");
    private Expr ParsePow() => ParseBinaryLevel(() => ParseUnary(true), "**");

    private Expr ParseUnary(bool withFilter)
    {
        var t = Peek();
        Expr node;
        if (t.Is(TokenKind.Op, "-") || t.Is(TokenKind.Op, "+"))
        {
            _i++;
            node = new UnaryExpr(t.Value, ParseUnary(false), t.Line);
        }
        else node = ParsePostfix(ParsePrimary());
        return withFilter ? ParseFilterChain(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(true, t.Line),
                    "false" or "False" => new ConstExpr(false, t.Line),
                    "none" or "None" => new ConstExpr(null, t.Line),
                    _ => new NameExpr(t.Value, t.Line),
                };
            case TokenKind.String:
                var s = t.Value;
                while (Peek().Kind == TokenKind.String) s += Next().Value; // adjacent literals concatenate
                return new ConstExpr(s, t.Line);
            case TokenKind.Integer:
                return long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var l)
                    ? new ConstExpr(l, t.Line)
                    : new ConstExpr(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Line);
            case TokenKind.Float:
                return new ConstExpr(double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture), t.Line);
            case TokenKind.Op when t.Value == "(":
                if (AcceptOp(")")) return new TupleExpr([], t.Line);
                var inner = ParseTuple(true);
                if (inner is TupleExpr) { ExpectOp(")"); return inner; }
                ExpectOp(")");
                return inner;
            case TokenKind.Op when t.Value == "[":
                var items = new List<Expr>();
                while (!AcceptOp("]"))
                {
                    if (items.Count > 0) { ExpectOp(","); if (AcceptOp("]")) break; }
                    items.Add(ParseExpression(true));
                }
                return new ListExpr(items, t.Line);
            case TokenKind.Op when t.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!AcceptOp("}"))
                {
                    if (pairs.Count > 0) { ExpectOp(","); if (AcceptOp("}")) break; }
                    var k = ParseExpression(true);
                    ExpectOp(":");
                    pairs.Add((k, ParseExpression(true)));
                }
                return new DictExpr(pairs, t.Line);
            default:
                throw Error($"unexpected {t}", t);
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var t = Peek();
            if (t.Is(TokenKind.Op, "."))
            {
                _i++;
                var n = Next();
                node = n.Kind switch
                {
                    TokenKind.Name => new AttrExpr(node, n.Value, n.Line),
                    TokenKind.Integer => new ItemExpr(node, new ConstExpr(long.Parse(n.Value, CultureInfo.InvariantCulture), n.Line), n.Line),
                    _ => throw Error($"expected an attribute name after '.', got {n}", n),
                };
            }
            else if (t.Is(TokenKind.Op, "["))
            {
                _i++;
                node = new ItemExpr(node, ParseSubscript(), t.Line);
                ExpectOp("]");
            }
            else if (t.Is(TokenKind.Op, "("))
            {
                _i++;
                node = new CallExpr(node, ParseArgs(), t.Line);
            }
            else return node;
        }
    }

    private Expr ParseSubscript()
    {
        var t = Peek();
        Expr? start = null;
        if (!t.Is(TokenKind.Op, ":"))
        {
            start = ParseExpression(true);
            if (!Peek().Is(TokenKind.Op, ":")) return start;
        }
        _i++;
        Expr? stop = null, step = null;
        if (!Peek().Is(TokenKind.Op, "]") && !Peek().Is(TokenKind.Op, ":")) stop = ParseExpression(true);
        if (AcceptOp(":") && !Peek().Is(TokenKind.Op, "]")) step = ParseExpression(true);
        return new SliceExpr(start, stop, step, t.Line);
    }

    // Call arguments after the opening parenthesis, through the closing one.
    private Args ParseArgs()
    {
        var pos = new List<Expr>();
        var named = new List<(string, Expr)>();
        while (!AcceptOp(")"))
        {
            if (pos.Count + named.Count > 0) { ExpectOp(","); if (AcceptOp(")")) break; }
            if (Peek().Kind == TokenKind.Name && Peek(1).Is(TokenKind.Op, "="))
            {
                var name = Next().Value;
                _i++;
                named.Add((name, ParseExpression(true)));
            }
            else
            {
                if (named.Count > 0) throw Error("positional argument after keyword argument", Peek());
                pos.Add(ParseExpression(true));
            }
        }
        return new Args(pos, named);
    }

    private Expr ParseFilterChain(Expr node)
    {
        while (true)
        {
            var t = Peek();
            if (t.Is(TokenKind.Op, "|"))
            {
                _i++;
                var nameTok = Peek();
                var name = ExpectIdentifier();
                if (!Filters.Names.Contains(name)) throw Error($"no filter named '{name}'", nameTok);
                var args = AcceptOp("(") ? ParseArgs() : Args.None;
                node = new FilterExpr(node, name, args, t.Line);
            }
            else if (t.Is(TokenKind.Name, "is"))
            {
                _i++;
                bool negated = AcceptName("not");
                var nameTok = Peek();
                // 'none', 'true' and 'false' are keywords as values but names as tests.
                var name = ExpectIdentifier();
                if (!Tests.Names.Contains(name)) throw Error($"no test named '{name}'", nameTok);
                Args args = Args.None;
                if (AcceptOp("(")) args = ParseArgs();
                else if (StartsBareTestArg()) args = new Args([ParsePostfix(ParsePrimary())], []);
                node = new TestExpr(node, name, args, negated, nameTok.Line);
            }
            else if (t.Is(TokenKind.Op, "("))
            {
                _i++;
                node = new CallExpr(node, ParseArgs(), t.Line);
            }
            else return node;
        }
    }

    // `x is divisibleby 3`, `x is equalto 'a'`: one primary argument without parentheses.
    private bool StartsBareTestArg()
    {
        var t = Peek();
        return t.Kind switch
        {
            TokenKind.Name => t.Value is not ("else" or "or" or "and" or "if" or "is" or "in" or "not"),
            TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
            TokenKind.Op => t.Value is "[" or "{",
            _ => false,
        };
    }
}
