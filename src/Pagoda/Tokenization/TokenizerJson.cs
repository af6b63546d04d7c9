using System.Text.Json;
using System.Text.RegularExpressions;
using Pagoda.Loading;

namespace Pagoda.Tokenization;

/// <summary>The parts of a tokenizer.json, built into working components.</summary>
internal sealed record TokenizerDefinition(
    BpeModel Model,
    IReadOnlyList<AddedToken> AddedTokens,
    Normalizer? Normalizer,
    PreTokenizer? PreTokenizer,
    PostProcessor? PostProcessor,
    Decoder? Decoder);

/// <summary>
/// Reads a Hugging Face tokenizer.json. Every component type Pagoda cannot reproduce exactly is
/// refused with a <see cref="ModelLoadException"/> rather than approximated.
/// </summary>
internal sealed class TokenizerJson
{
    private readonly string _path;

    private TokenizerJson(string path) => _path = path;

    public static TokenizerDefinition Load(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, "cannot read tokenizer: " + e.Message, e);
        }
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return new TokenizerJson(path).Build(doc.RootElement);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, "malformed JSON: " + e.Message, e);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new ModelLoadException(path, "invalid tokenizer.json: " + e.Message, e);
        }
    }

    private TokenizerDefinition Build(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Fail("top level is not a JSON object");
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in list.EnumerateArray())
            {
                added.Add(new AddedToken(
                    t.GetProperty("id").GetInt32(), t.GetProperty("content").GetString() ?? "",
                    Bool(t, "special", false), Bool(t, "lstrip", false), Bool(t, "rstrip", false),
                    Bool(t, "single_word", false), Bool(t, "normalized", true)));
            }
        }
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw Fail("no \"model\" object");
        return new TokenizerDefinition(
            BuildModel(model), added,
            Optional(root, "normalizer", BuildNormalizer),
            Optional(root, "pre_tokenizer", BuildPreTokenizer),
            Optional(root, "post_processor", BuildPostProcessor),
            Optional(root, "decoder", BuildDecoder));
    }

    private BpeModel BuildModel(JsonElement m)
    {
        // Old files omit the type; HF then infers BPE from the presence of merges.
        string type = Str(m, "type") ?? (m.TryGetProperty("merges", out _) ? "BPE" : "?");
        if (type != "BPE") throw Unsupported("model", type, "BPE");
        if (m.TryGetProperty("dropout", out var d) && d.ValueKind == JsonValueKind.Number && d.GetDouble() > 0)
            throw Fail("BPE dropout is not supported");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in m.GetProperty("vocab").EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();

        var merges = new Dictionary<long, (int, int)>(BpeModel.PairComparer.Instance);
        int rank = 0;
        foreach (var entry in m.GetProperty("merges").EnumerateArray())
        {
            string left, right;
            if (entry.ValueKind == JsonValueKind.Array)
            {
                left = entry[0].GetString() ?? "";
                right = entry[1].GetString() ?? "";
            }
            else
            {
                var parts = (entry.GetString() ?? "").Split(' ');
                if (parts.Length != 2) throw Fail($"merge {rank} is not two tokens: '{entry.GetString()}'");
                (left, right) = (parts[0], parts[1]);
            }
            if (!vocab.TryGetValue(left, out int l) || !vocab.TryGetValue(right, out int r)
                || !vocab.TryGetValue(left + right, out int merged))
                throw Fail($"merge {rank} ('{left}' '{right}') uses a token missing from the vocab");
            merges.TryAdd(BpeModel.PairKey(l, r), (rank, merged));
            rank++;
        }
        var options = new BpeOptions(
            Str(m, "unk_token"), Bool(m, "fuse_unk", false), Bool(m, "byte_fallback", false),
            Bool(m, "ignore_merges", false), Str(m, "continuing_subword_prefix"), Str(m, "end_of_word_suffix"));
        return new BpeModel(vocab, merges, options);
    }

    private Normalizer BuildNormalizer(JsonElement n)
    {
        string type = Type(n);
        return type switch
        {
            "NFC" => new NfcNormalizer(),
            "Sequence" => new SequenceNormalizer(n.GetProperty("normalizers").EnumerateArray().Select(BuildNormalizer).ToList()),
            "Prepend" => new PrependNormalizer(Str(n, "prepend") ?? ""),
            "Replace" => new ReplaceNormalizer(Pattern(n.GetProperty("pattern")), Str(n, "content") ?? ""),
            _ => throw Unsupported("normalizer", type, "NFC, Sequence, Prepend, Replace"),
        };
    }

    private PreTokenizer BuildPreTokenizer(JsonElement p)
    {
        string type = Type(p);
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(p.GetProperty("pretokenizers").EnumerateArray().Select(BuildPreTokenizer).ToList()),
            "Split" => new SplitPreTokenizer(Pattern(p.GetProperty("pattern")), Behavior(Str(p, "behavior")), Bool(p, "invert", false)),
            "ByteLevel" => new ByteLevelPreTokenizer(Bool(p, "add_prefix_space", true), Bool(p, "use_regex", true)),
            "Metaspace" => new MetaspacePreTokenizer(Replacement(p), Scheme(p), Bool(p, "split", true)),
            _ => throw Unsupported("pre-tokenizer", type, "Sequence, Split, ByteLevel, Metaspace"),
        };
    }

    private PostProcessor BuildPostProcessor(JsonElement p)
    {
        string type = Type(p);
        switch (type)
        {
            case "ByteLevel":
                return new PassThroughPostProcessor();
            case "Sequence":
                return new SequencePostProcessor(p.GetProperty("processors").EnumerateArray().Select(BuildPostProcessor).ToList());
            case "BertProcessing":
            case "RobertaProcessing":
                return new ClsSepPostProcessor(p.GetProperty("cls")[1].GetInt32(), p.GetProperty("sep")[1].GetInt32());
            case "TemplateProcessing":
                var specials = new Dictionary<string, int[]>();
                foreach (var s in p.GetProperty("special_tokens").EnumerateObject())
                    specials[s.Name] = s.Value.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                var single = new List<int[]?>();
                foreach (var item in p.GetProperty("single").EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _)) single.Add(null);
                    else if (item.TryGetProperty("SpecialToken", out var st))
                    {
                        string id = st.GetProperty("id").GetString() ?? "";
                        single.Add(specials.TryGetValue(id, out var ids) ? ids
                            : throw Fail($"template special token '{id}' is not listed in special_tokens"));
                    }
                    else throw Fail("unknown TemplateProcessing item " + item.GetRawText());
                }
                return new TemplatePostProcessor(single);
            default:
                throw Unsupported("post-processor", type, "ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence");
        }
    }

    private Decoder BuildDecoder(JsonElement d)
    {
        string type = Type(d);
        switch (type)
        {
            case "ByteLevel": return new ByteLevelDecoder();
            case "Sequence": return new SequenceDecoder(d.GetProperty("decoders").EnumerateArray().Select(BuildDecoder).ToList());
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Metaspace": return new MetaspaceDecoder(Replacement(d), Scheme(d));
            case "Strip":
                string content = Str(d, "content") ?? " ";
                if (content.Length != 1) throw Fail("Strip decoder content must be one character");
                return new StripDecoder(content[0], d.GetProperty("start").GetInt32(), d.GetProperty("stop").GetInt32());
            case "Replace":
                if (!d.GetProperty("pattern").TryGetProperty("String", out var literal))
                    throw Fail("Replace decoder supports only a String pattern");
                return new ReplaceDecoder(literal.GetString() ?? "", Str(d, "content") ?? "");
            default:
                throw Unsupported("decoder", type, "ByteLevel, Sequence, ByteFallback, Fuse, Strip, Replace, Metaspace");
        }
    }

    private HfRegex Pattern(JsonElement pattern)
    {
        if (pattern.TryGetProperty("String", out var s)) return new HfRegex(Regex.Escape(s.GetString() ?? ""));
        if (pattern.TryGetProperty("Regex", out var r))
        {
            try { return new HfRegex(r.GetString() ?? ""); }
            catch (ArgumentException e) { throw Fail($"regex '{r.GetString()}' is not valid for .NET: {e.Message}"); }
        }
        throw Fail("pattern is neither String nor Regex: " + pattern.GetRawText());
    }

    private char Replacement(JsonElement e)
    {
        string r = Str(e, "replacement") ?? "\u2581";
        return r.Length == 1 ? r[0] : throw Fail($"Metaspace replacement must be one character, not '{r}'");
    }

    // Files written before prepend_scheme existed say add_prefix_space instead.
    private PrependScheme Scheme(JsonElement e) => Str(e, "prepend_scheme") switch
    {
        "always" => PrependScheme.Always,
        "first" => PrependScheme.First,
        "never" => PrependScheme.Never,
        null => Bool(e, "add_prefix_space", true) ? PrependScheme.Always : PrependScheme.Never,
        var other => throw Fail($"unknown Metaspace prepend_scheme '{other}'"),
    };

    private SplitBehavior Behavior(string? name) => name switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw Fail($"unknown Split behavior '{name}'"),
    };

    private static T? Optional<T>(JsonElement root, string name, Func<JsonElement, T> build) where T : class =>
        root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Object ? build(e) : null;

    private string Type(JsonElement e) => Str(e, "type") ?? throw Fail("component without \"type\": " + e.GetRawText());

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool Bool(JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    private ModelLoadException Fail(string problem) => new(_path, problem);

    private ModelLoadException Unsupported(string component, string type, string supported) =>
        new(_path, $"unsupported {component} type '{type}' (supported: {supported})");
}
