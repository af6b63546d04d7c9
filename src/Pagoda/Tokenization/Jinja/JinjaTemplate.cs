namespace Pagoda.Tokenization.Jinja;

/// <summary>
/// A parsed Jinja2 template (the subset Hugging Face chat templates use). Parse once; <see cref="Render"/>
/// is thread-safe because the syntax tree is immutable and every render has its own state.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Stmt> _body;
    private readonly JinjaOptions _options;

    private JinjaTemplate(IReadOnlyList<Stmt> body, JinjaOptions options)
    {
        _body = body;
        _options = options;
    }

    /// <summary>Parses <paramref name="source"/>; throws <see cref="JinjaException"/> on a syntax error.</summary>
    public static JinjaTemplate Parse(string source, JinjaOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= JinjaOptions.Default;
        return new JinjaTemplate(Parser.Parse(source, options), options);
    }

    /// <summary>
    /// Renders with the given variables. Values may be <see cref="System.Text.Json.Nodes.JsonNode"/>s, strings,
    /// booleans, numbers, null, dictionaries with string keys, or sequences of those.
    /// Throws <see cref="JinjaException"/> on a runtime error, including <c>raise_exception(...)</c>.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?>? variables = null)
    {
        var it = new Interpreter(_options);
        var scope = new Scope(Globals.Create(it));
        if (variables != null)
            foreach (var (name, value) in variables) scope.Set(name, Values.FromClr(value));
        return it.Run(_body, scope);
    }
}
