using System.Text;

namespace Pagoda.Tokenization.Jinja;

// Variable scope: templates, loop iterations and macro calls each get one chained to their parent.
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _vars = new();

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s != null; s = s.Parent)
            if (s._vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public void Set(string name, object? value) => _vars[name] = value;

    public Scope? Parent { get; } = parent;
}

// The state of one render: walks statements, writing to a string builder.
internal sealed partial class Interpreter
{
    private enum Flow { Normal, Break, Continue }

    private readonly JinjaOptions _options;

    public Interpreter(JinjaOptions options) => _options = options;

    public string Run(IReadOnlyList<Stmt> body, Scope scope)
    {
        var sb = new StringBuilder();
        Exec(body, scope, sb);
        return sb.ToString();
    }

    private Flow Exec(IReadOnlyList<Stmt> body, Scope scope, StringBuilder sb)
    {
        foreach (var stmt in body)
        {
            var flow = Exec(stmt, scope, sb);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow Exec(Stmt stmt, Scope scope, StringBuilder sb)
    {
        switch (stmt)
        {
            case TextStmt t:
                sb.Append(t.Text);
                return Flow.Normal;
            case OutputStmt o:
                sb.Append(Values.Str(Eval(o.Value, scope)));
                return Flow.Normal;
            case IfStmt i:
                foreach (var (test, branch) in i.Branches)
                    if (Values.Truthy(Eval(test, scope))) return Exec(branch, scope, sb);
                return Exec(i.Else, scope, sb);
            case ForStmt f:
                ExecFor(f, scope, sb);
                return Flow.Normal;
            case SetStmt s:
                Assign(s.Target, Eval(s.Value, scope), scope, s.Line);
                return Flow.Normal;
            case SetBlockStmt s:
                var inner = new StringBuilder();
                Exec(s.Body, scope, inner);
                Assign(s.Target, inner.ToString(), scope, s.Line);
                return Flow.Normal;
            case MacroStmt m:
                scope.Set(m.Name, MakeMacro(m, scope));
                return Flow.Normal;
            case BlockStmt b:
                return Exec(b.Body, scope, sb);
            case BreakStmt:
                return Flow.Break;
            case ContinueStmt:
                return Flow.Continue;
            default:
                throw new JinjaException("unsupported statement " + stmt.GetType().Name, stmt.Line);
        }
    }

    private void ExecFor(ForStmt f, Scope scope, StringBuilder sb)
    {
        var source = Eval(f.Iter, scope);
        List<object?> items;
        try { items = Iterate(source); }
        catch (JinjaError e) { throw new JinjaException(e.Message, f.Line); }
        if (f.Filter != null)
        {
            // The loop filter runs first, so loop.length and loop.last see only the kept items.
            items = items.Where(item =>
            {
                var s = new Scope(scope);
                Assign(f.Target, item, s, f.Line);
                return Values.Truthy(Eval(f.Filter, s));
            }).ToList();
        }
        if (items.Count == 0)
        {
            Exec(f.Else, new Scope(scope), sb);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            // A fresh scope per iteration: Jinja forgets `set` from the previous iteration.
            var s = new Scope(scope);
            s.Set("loop", new LoopInfo(items, i));
            Assign(f.Target, items[i], s, f.Line);
            if (Exec(f.Body, s, sb) == Flow.Break) break;
        }
    }

    // Python iteration: lists and tuples by item, dicts by key, strings by character.
    public static List<object?> Iterate(object? value) => value switch
    {
        List<object?> l => l,
        object?[] t => t.ToList(),
        JinjaDict d => d.Keys.Cast<object?>().ToList(),
        string s => Chars(s),
        Undefined => [],
        _ => throw new JinjaError($"'{Values.TypeName(value)}' object is not iterable"),
    };

    public static List<object?> Chars(string s)
    {
        var r = new List<object?>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            int n = char.IsHighSurrogate(s[i]) && i + 1 < s.Length ? 2 : 1;
            r.Add(s.Substring(i, n));
            i += n - 1;
        }
        return r;
    }

    private void Assign(Expr target, object? value, Scope scope, int line)
    {
        switch (target)
        {
            case NameExpr n:
                scope.Set(n.Name, value);
                break;
            case AttrExpr { Target: NameExpr ns } a:
                if (!scope.TryGet(ns.Name, out var obj) || obj is not Namespace space)
                    throw new JinjaException($"cannot assign attribute on non-namespace object '{ns.Name}'", line);
                space.Attrs[a.Name] = value;
                break;
            case TupleExpr t:
                List<object?> items;
                try { items = Iterate(value); }
                catch (JinjaError e) { throw new JinjaException("cannot unpack: " + e.Message, line); }
                if (items.Count != t.Items.Count)
                    throw new JinjaException($"cannot unpack {items.Count} values into {t.Items.Count} names", line);
                for (int i = 0; i < items.Count; i++) Assign(t.Items[i], items[i], scope, line);
                break;
            default:
                throw new JinjaException("cannot assign to this expression", line);
        }
    }

    private JinjaCallable MakeMacro(MacroStmt m, Scope defining) => new(m.Name, (args, kwargs) =>
    {
        var s = new Scope(defining);
        if (args.Count > m.Params.Count)
            throw new JinjaError($"macro '{m.Name}' takes not more than {m.Params.Count} argument(s)");
        for (int i = 0; i < m.Params.Count; i++)
        {
            var (name, dflt) = m.Params[i];
            object? v;
            if (i < args.Count) v = args[i];
            else if (kwargs.Remove(name, out var kv)) v = kv;
            else v = dflt != null ? Eval(dflt, s) : new Undefined($"parameter '{name}' was not provided");
            s.Set(name, v);
        }
        if (kwargs.Count > 0)
            throw new JinjaError($"macro '{m.Name}' takes no keyword argument '{kwargs.Keys.First()}'");
        var sb = new StringBuilder();
        Exec(m.Body, s, sb);
        return sb.ToString();
    });
}

// The loop variable inside a for block.
internal sealed class LoopInfo(List<object?> items, int index0)
{
    public object? Get(string name) => name switch
    {
        "index0" => (long)index0,
        "index" => (long)index0 + 1,
        "first" => index0 == 0,
        "last" => index0 == items.Count - 1,
        "length" => (long)items.Count,
        "revindex" => (long)(items.Count - index0),
        "revindex0" => (long)(items.Count - index0 - 1),
        "previtem" => index0 > 0 ? items[index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => index0 < items.Count - 1 ? items[index0 + 1] : new Undefined("there is no next item"),
        "depth" => 1L,
        "depth0" => 0L,
        "cycle" => new JinjaCallable("cycle", (args, _) =>
            args.Count == 0 ? throw new JinjaError("no items for cycling given") : args[index0 % args.Count]),
        _ => new Undefined($"'LoopContext' has no attribute '{name}'"),
    };
}
