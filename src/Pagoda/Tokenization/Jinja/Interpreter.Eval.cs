namespace Pagoda.Tokenization.Jinja;

internal sealed partial class Interpreter
{
    // Evaluates an expression; runtime errors get the expression's line.
    public object? Eval(Expr e, Scope scope)
    {
        try
        {
            return EvalCore(e, scope);
        }
        catch (JinjaError err)
        {
            throw new JinjaException(err.Message, e.Line);
        }
    }

    private object? EvalCore(Expr e, Scope scope)
    {
        switch (e)
        {
            case ConstExpr c:
                return c.Value;
            case NameExpr n:
                return scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined");
            case ListExpr l:
                return l.Items.Select(x => Eval(x, scope)).ToList();
            case TupleExpr t:
                return t.Items.Select(x => Eval(x, scope)).ToArray();
            case DictExpr d:
                var dict = new JinjaDict();
                foreach (var (k, val) in d.Pairs)
                {
                    var key = Eval(k, scope) ?? throw new JinjaError("dict keys cannot be none");
                    dict[key] = Eval(val, scope);
                }
                return dict;
            case AttrExpr a:
                return Access.GetAttr(Eval(a.Target, scope), a.Name);
            case ItemExpr i:
                var target = Eval(i.Target, scope);
                if (i.Key is SliceExpr s)
                    return Access.Slice(target, EvalOpt(s.Start, scope), EvalOpt(s.Stop, scope), EvalOpt(s.Step, scope));
                return Access.GetItem(target, Eval(i.Key, scope));
            case CallExpr c:
                var callee = Eval(c.Callee, scope);
                var (args, kwargs) = EvalArgs(c.Args, scope);
                return callee switch
                {
                    JinjaCallable f => f.Invoke(args, kwargs),
                    Undefined u => throw new JinjaError(u.Describe()),
                    _ => throw new JinjaError($"'{Values.TypeName(callee)}' object is not callable"),
                };
            case FilterExpr f:
                var value = Eval(f.Value, scope);
                var (fargs, fkw) = EvalArgs(f.Args, scope);
                return Filters.Apply(this, f.Name, value, fargs, fkw);
            case TestExpr t:
                var (targs, _) = EvalArgs(t.Args, scope);
                return Tests.Apply(this, t.Name, Eval(t.Value, scope), targs) != t.Negated;
            case BinaryExpr b:
                if (b.Op == "and")
                {
                    var l = Eval(b.Left, scope);
                    return Values.Truthy(l) ? Eval(b.Right, scope) : l;
                }
                if (b.Op == "or")
                {
                    var l = Eval(b.Left, scope);
                    return Values.Truthy(l) ? l : Eval(b.Right, scope);
                }
                return Operators.Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope));
            case UnaryExpr u:
                var operand = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !Values.Truthy(operand),
                    "-" => Operators.Negate(operand),
                    _ => Values.IsNumber(operand) ? operand : throw new JinjaError($"bad operand type for unary +: '{Values.TypeName(operand)}'"),
                };
            case CompareExpr c:
                var left = Eval(c.First, scope);
                foreach (var (op, rightExpr) in c.Rest)
                {
                    var right = Eval(rightExpr, scope);
                    if (!Operators.Compare(op, left, right)) return false;
                    left = right;
                }
                return true;
            case CondExpr c:
                if (Values.Truthy(Eval(c.Test, scope))) return Eval(c.Then, scope);
                return c.Else != null ? Eval(c.Else, scope) : new Undefined("the inline if-expression evaluated to false and no else section was defined");
            default:
                throw new JinjaError("unsupported expression " + e.GetType().Name);
        }
    }

    private object? EvalOpt(Expr? e, Scope scope) => e == null ? null : Eval(e, scope);

    private (List<object?>, Dictionary<string, object?>) EvalArgs(Args a, Scope scope)
    {
        var args = new List<object?>(a.Positional.Count);
        foreach (var p in a.Positional) args.Add(Eval(p, scope));
        var kwargs = new Dictionary<string, object?>();
        foreach (var (name, value) in a.Named) kwargs[name] = Eval(value, scope);
        return (args, kwargs);
    }

    // Current time for strftime_now.
    public DateTime Now() => _options.Clock?.Invoke() ?? DateTime.Now;
}
