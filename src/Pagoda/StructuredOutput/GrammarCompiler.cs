using System.Collections.Concurrent;
using System.Text.Json;

namespace Pagoda.StructuredOutput;

/// <summary>
/// Compiles structured-output requests (vLLM's structured_outputs: json, json_object, regex, choice,
/// grammar) into <see cref="CompiledGrammar"/>s for one vocabulary, and caches them by source so repeated
/// requests with the same schema share one automaton and its mask caches. Thread-safe.
/// </summary>
public sealed class GrammarCompiler
{
    private const int MaxCached = 256;
    private readonly TokenVocabulary _vocab;
    private readonly GrammarLimits _limits;
    private readonly ConcurrentDictionary<string, CompiledGrammar> _cache = new(StringComparer.Ordinal);

    /// <summary>The vocabulary masks are made over (a second compiler with other limits may share it).</summary>
    public TokenVocabulary Vocabulary => _vocab;

    public GrammarCompiler(TokenVocabulary vocab, GrammarLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        _vocab = vocab;
        _limits = limits ?? GrammarLimits.Default;
    }

    /// <summary>Output must be JSON valid against the schema (see <see cref="JsonSchemaConverter"/>).</summary>
    public CompiledGrammar JsonSchema(string schemaJson)
    {
        ArgumentNullException.ThrowIfNull(schemaJson);
        return Cached("json:" + schemaJson, "json schema", b =>
        {
            CheckLength(schemaJson, "schema");
            var options = new JsonDocumentOptions { MaxDepth = 2 * _limits.MaxNesting + 2 };
            JsonDocument doc;
            try { doc = JsonDocument.Parse(schemaJson, options); }
            catch (JsonException e) { throw new GrammarException("the schema is not valid JSON (or nests too deeply): " + e.Message, e); }
            using (doc) return JsonSchemaConverter.Convert(new JsonGrammar(b), doc.RootElement);
        });
    }

    /// <summary>Output must be one JSON object (OpenAI's json_object), nested at most AnyJsonDepth deep.</summary>
    public CompiledGrammar JsonObject() => Cached("json_object", "json object", b =>
    {
        var j = new JsonGrammar(b);
        return b.Add("root", j.AnyObject(_limits.AnyJsonDepth));
    });

    /// <summary>The whole output must match the regex (see <see cref="RegexParser"/> for the syntax).</summary>
    public CompiledGrammar Regex(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return Cached("regex:" + pattern, "regex", b => b.Add("root", RegexParser.Parse(pattern, b.Budget)));
    }

    /// <summary>Output must be exactly one of the strings.</summary>
    public CompiledGrammar Choice(IReadOnlyList<string> choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Count == 0) throw new GrammarException("choice needs at least one string");
        if (choices.Count > _limits.MaxEnumEntries) throw new GrammarException($"more than {_limits.MaxEnumEntries} choices");
        string key = "choice:" + string.Concat(choices.Select(c => c.Length + ":" + c));
        return Cached(key, "choice", b =>
        {
            var options = choices.Select(c =>
            {
                var bytes = System.Text.Encoding.UTF8.GetBytes(c);
                b.Budget.AddLiteralBytes(bytes.Length);
                return X.Lit(bytes);
            }).ToArray();
            return b.Add("root", X.Alt(options));
        });
    }

    /// <summary>Output must match the grammar: GBNF (root ::= ...) or Lark-like EBNF (start: ...).</summary>
    public CompiledGrammar Grammar(string ebnf)
    {
        ArgumentNullException.ThrowIfNull(ebnf);
        return Cached("grammar:" + ebnf, "grammar", b => EbnfParser.Parse(b, ebnf));
    }

    private void CheckLength(string text, string what)
    {
        if (text.Length > _limits.MaxSourceLength)
            throw new GrammarException($"{what} longer than {_limits.MaxSourceLength} characters");
    }

    private CompiledGrammar Cached(string key, string kind, Func<GrammarBuilder, int> front)
    {
        if (_cache.TryGetValue(key, out var known)) return known;
        var budget = new CompileBudget(_limits);
        var builder = new GrammarBuilder(budget);
        PdaTables tables;
        try
        {
            int root = front(builder);
            tables = builder.Build(root);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException)
        {
            // Malformed input that slipped past a front end's checks: a lone surrogate, a JSON value of the
            // wrong kind read as a string ("required": [1]), a number too large for its field.
            throw new GrammarException($"invalid {kind}: {e.Message}", e);
        }
        var compiled = new CompiledGrammar(tables, _vocab, kind + ": " + (key.Length > 80 ? key[..80] + "..." : key));
        if (_cache.Count >= MaxCached) _cache.Clear();
        return _cache.GetOrAdd(key, compiled);
    }
}
