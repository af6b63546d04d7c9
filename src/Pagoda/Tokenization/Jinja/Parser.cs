namespace Pagoda.Tokenization.Jinja;

// Recursive-descent parser: statements here, expressions in Parser.Expressions.cs.
internal sealed partial class Parser
{
    private readonly List<Token> _tokens;
    private int _i;

    private Parser(List<Token> tokens) => _tokens = tokens;

    public static IReadOnlyList<Stmt> Parse(string source, JinjaOptions options)
    {
        var p = new Parser(Lexer.Tokenize(source, options));
        var (body, _) = p.ParseBody([]);
        return body;
    }

    private Token Peek(int ahead = 0) => _tokens[Math.Min(_i + ahead, _tokens.Count - 1)];
    private Token Next() => _tokens[Math.Min(_i++, _tokens.Count - 1)];

    private static JinjaException Error(string problem, Token at) => new(problem, at.Line);

    private bool AcceptOp(string op)
    {
        if (!Peek().Is(TokenKind.Op, op)) return false;
        _i++;
        return true;
    }

    private bool AcceptName(string name)
    {
        if (!Peek().Is(TokenKind.Name, name)) return false;
        _i++;
        return true;
    }

    private void ExpectOp(string op)
    {
        if (!AcceptOp(op)) throw Error($"expected '{op}', got {Peek()}", Peek());
    }

    private void ExpectName(string name)
    {
        if (!AcceptName(name)) throw Error($"expected '{name}', got {Peek()}", Peek());
    }

    private string ExpectIdentifier()
    {
        var t = Next();
        if (t.Kind != TokenKind.Name) throw Error($"expected a name, got {t}", t);
        return t.Value;
    }

    private void ExpectBlockEnd()
    {
        var t = Next();
        if (t.Kind != TokenKind.BlockEnd) throw Error($"expected end of statement block, got {t}", t);
    }

    // Parses statements until one of <paramref name="ends"/> opens a block; that tag's name is consumed.
    private (List<Stmt> Body, string End) ParseBody(string[] ends)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var t = Peek();
            switch (t.Kind)
            {
                case TokenKind.Text:
                    _i++;
                    body.Add(new TextStmt(t.Value, t.Line));
                    break;
                case TokenKind.VarBegin:
                    _i++;
                    var e = ParseTuple(true);
                    var close = Next();
                    if (close.Kind != TokenKind.VarEnd) throw Error($"expected end of print statement, got {close}", close);
                    body.Add(new OutputStmt(e, t.Line));
                    break;
                case TokenKind.BlockBegin:
                    var name = Peek(1);
                    if (name.Kind == TokenKind.Name && ends.Contains(name.Value))
                    {
                        _i += 2;
                        return (body, name.Value);
                    }
                    _i++;
                    body.Add(ParseStatement(ends));
                    break;
                case TokenKind.Eof:
                    if (ends.Length > 0)
                        throw Error($"unexpected end of template, expected {string.Join(" or ", ends.Select(x => $"'{x}'"))}", t);
                    return (body, "");
                default:
                    throw Error($"unexpected {t}", t);
            }
        }
    }

    private Stmt ParseStatement(string[] outerEnds)
    {
        var t = Next();
        if (t.Kind != TokenKind.Name) throw Error($"expected a statement name, got {t}", t);
        switch (t.Value)
        {
            case "if": return ParseIf(t);
            case "for": return ParseFor(t);
            case "set": return ParseSet(t);
            case "macro": return ParseMacro(t);
            case "break":
                ExpectBlockEnd();
                return new BreakStmt(t.Line);
            case "continue":
                ExpectBlockEnd();
                return new ContinueStmt(t.Line);
            case "generation":
                // transformers' extension that marks assistant output; it renders its body unchanged.
                ExpectBlockEnd();
                return new BlockStmt(ParseBody(["endgeneration"]).Body.Also(ExpectBlockEnd), t.Line);
            default:
                var hint = outerEnds.Length > 0 ? $" (expected {string.Join(" or ", outerEnds.Select(x => $"'{x}'"))})" : "";
                throw Error($"unknown tag '{t.Value}'{hint}", t);
        }
    }

    private IfStmt ParseIf(Token start)
    {
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        IReadOnlyList<Stmt> elseBody = [];
        var test = ParseExpression(true);
        while (true)
        {
            ExpectBlockEnd();
            var (body, end) = ParseBody(["elif", "else", "endif"]);
            branches.Add((test, body));
            if (end == "elif")
            {
                test = ParseExpression(true);
                continue;
            }
            if (end == "else")
            {
                ExpectBlockEnd();
                elseBody = ParseBody(["endif"]).Body;
            }
            ExpectBlockEnd();
            return new IfStmt(branches, elseBody, start.Line);
        }
    }

    private ForStmt ParseFor(Token start)
    {
        var target = ParseAssignTarget(allowAttr: false);
        ExpectName("in");
        var iter = ParseTuple(false);
        Expr? filter = null;
        if (AcceptName("if")) filter = ParseExpression(true);
        if (Peek().Is(TokenKind.Name, "recursive")) throw Error("recursive loops are not supported", Peek());
        ExpectBlockEnd();
        var (body, end) = ParseBody(["else", "endfor"]);
        IReadOnlyList<Stmt> elseBody = [];
        if (end == "else")
        {
            ExpectBlockEnd();
            elseBody = ParseBody(["endfor"]).Body;
        }
        ExpectBlockEnd();
        return new ForStmt(target, iter, filter, body, elseBody, start.Line);
    }

    private Stmt ParseSet(Token start)
    {
        var target = ParseAssignTarget(allowAttr: true);
        if (AcceptOp("="))
        {
            var value = ParseTuple(true);
            ExpectBlockEnd();
            return new SetStmt(target, value, start.Line);
        }
        ExpectBlockEnd();
        var body = ParseBody(["endset"]).Body;
        ExpectBlockEnd();
        return new SetBlockStmt(target, body, start.Line);
    }

    private MacroStmt ParseMacro(Token start)
    {
        var name = ExpectIdentifier();
        var ps = new List<(string, Expr?)>();
        ExpectOp("(");
        while (!AcceptOp(")"))
        {
            if (ps.Count > 0) ExpectOp(",");
            if (AcceptOp(")")) break;
            var p = ExpectIdentifier();
            ps.Add((p, AcceptOp("=") ? ParseExpression(true) : null));
        }
        ExpectBlockEnd();
        var body = ParseBody(["endmacro"]).Body;
        if (Peek().Kind == TokenKind.Name) _i++; // {% endmacro name %}
        ExpectBlockEnd();
        return new MacroStmt(name, ps, body, start.Line);
    }

    // Assignment targets: x, ns.attr, or a tuple of names (k, v or (k, v)).
    private Expr ParseAssignTarget(bool allowAttr)
    {
        var items = new List<Expr>();
        bool paren = AcceptOp("(");
        do
        {
            if (paren && Peek().Is(TokenKind.Op, ")")) break;
            var t = Peek();
            Expr target = new NameExpr(ExpectIdentifier(), t.Line);
            if (allowAttr && AcceptOp(".")) target = new AttrExpr(target, ExpectIdentifier(), t.Line);
            items.Add(target);
        } while (AcceptOp(","));
        if (paren) ExpectOp(")");
        bool tuple = paren || items.Count > 1;
        return tuple ? new TupleExpr(items, items[0].Line) : items[0];
    }
}

internal static class ParserExtensions
{
    // Runs a side effect and passes the value through (keeps the tag parsers linear).
    public static T Also<T>(this T value, Action action)
    {
        action();
        return value;
    }
}
