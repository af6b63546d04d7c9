namespace Pagoda.Tokenization.Jinja;

// The built-in tests (value is name(args)).
internal static class Tests
{
    // Checked when parsing so an unknown test fails at load time, as in Jinja.
    public static readonly HashSet<string> Names =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
        "iterable", "sequence", "callable", "odd", "even", "divisibleby", "lower", "upper", "sameas", "in", "equalto", "eq",
        "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
    ];

    public static bool Apply(Interpreter it, string name, object? v, List<object?> a)
    {
        object? A0() => a.Count > 0 ? a[0] : throw new JinjaError($"test '{name}' needs an argument");
        switch (name)
        {
            case "defined": return v is not Undefined;
            case "undefined": return v is Undefined;
            case "none": return v == null;
            case "string": return v is string;
            case "number": return v is long or double or bool; // bool is a number in Python
            case "integer": return v is long;
            case "float": return v is double;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "mapping": return v is JinjaDict;
            case "iterable": return v is string or IList<object?> or JinjaDict or Undefined;
            case "sequence": return v is string or IList<object?> or JinjaDict or Undefined;
            case "callable": return v is JinjaCallable;
            case "odd": return Values.ToLong(Num(v)) % 2 != 0;
            case "even": return Values.ToLong(Num(v)) % 2 == 0;
            case "divisibleby": return Values.ToLong(Num(v)) % Values.ToLong(Num(A0())) == 0;
            case "lower": return v is string ls && ls == ls.ToLowerInvariant();
            case "upper": return v is string us && us == us.ToUpperInvariant();
            case "sameas": return ReferenceEquals(v, A0()) || (v == null && A0() == null) || (v is bool b && A0() is bool c && b == c);
            case "in": return Operators.Contains(A0(), v);
            case "equalto" or "eq" or "==": return Operators.Compare("==", v, A0());
            case "ne" or "!=": return Operators.Compare("!=", v, A0());
            case "lt" or "lessthan" or "<": return Operators.Compare("<", v, A0());
            case "le" or "<=": return Operators.Compare("<=", v, A0());
            case "gt" or "greaterthan" or ">": return Operators.Compare(">", v, A0());
            case "ge" or ">=": return Operators.Compare(">=", v, A0());
            default: throw new JinjaError($"no test named '{name}'");
        }
    }

    private static object? Num(object? v) => Values.IsNumber(v) ? v : throw new JinjaError($"expected a number, got {Values.TypeName(v)}");
}
