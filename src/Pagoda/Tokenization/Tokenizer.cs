using Pagoda.Loading;

namespace Pagoda.Tokenization;

/// <summary>
/// A Hugging Face tokenizer loaded from tokenizer.json (plus tokenizer_config.json when present),
/// producing the same ids and text as the HF <c>tokenizers</c> library. Safe for concurrent use.
/// </summary>
public sealed class Tokenizer
{
    private readonly TokenizerDefinition _def;
    private readonly TokenizerConfig _config;
    private readonly Dictionary<int, AddedToken> _addedById = [];
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);
    private readonly string?[] _idToToken;
    private readonly byte[]?[]? _tokenBytes; // per id, filled on first use: only for a lone ByteLevel decoder
    private readonly AddedTokenMatcher _rawMatcher;
    private readonly AddedTokenMatcher _normalizedMatcher;
    private readonly bool _configAddsSpecials;

    private Tokenizer(TokenizerDefinition def, TokenizerConfig config)
    {
        _def = def;
        _config = config;
        foreach (var t in def.AddedTokens)
        {
            _addedById[t.Id] = t;
            _addedByContent.TryAdd(t.Content, t);
        }

        int max = -1;
        foreach (var id in def.Model.Vocab.Values) max = Math.Max(max, id);
        foreach (var id in _addedById.Keys) max = Math.Max(max, id);
        VocabSize = max + 1;
        _idToToken = new string?[VocabSize];
        foreach (var (token, id) in def.Model.Vocab) if (id >= 0) _idToToken[id] = token;
        foreach (var (id, t) in _addedById) if (id >= 0) _idToToken[id] = t.Content;
        if (def.Decoder is ByteLevelDecoder) _tokenBytes = new byte[]?[VocabSize];

        // As in HF, "normalized" tokens are looked for in normalized text, the others in the raw text.
        _rawMatcher = new AddedTokenMatcher(def.AddedTokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        _normalizedMatcher = new AddedTokenMatcher(def.AddedTokens.Where(t => t.Normalized)
            .Select(t => (def.Normalizer?.Apply(t.Content) ?? t.Content, t)));

        BosTokenId = config.BosToken is null ? null : TokenToId(config.BosToken);
        EosTokenId = config.EosToken is null ? null : TokenToId(config.EosToken);
        PadTokenId = config.PadToken is null ? null : TokenToId(config.PadToken);
        // transformers lets tokenizer.json's post-processor decide which special tokens to add; only
        // without one does it build a template from add_bos_token/add_eos_token (so DeepSeek-V3, whose
        // config asks for BOS over a ByteLevel post-processor, gets none: see the golden entries).
        _configAddsSpecials = def.PostProcessor is null;
    }

    /// <summary>
    /// Loads <c>tokenizer.json</c> (required) and <c>tokenizer_config.json</c> (optional) from a model folder.
    /// </summary>
    /// <exception cref="ModelLoadException">A file is missing, malformed, or uses an unsupported component.</exception>
    public static Tokenizer FromFolder(string modelDir)
    {
        string json = Path.Combine(modelDir, "tokenizer.json");
        if (!File.Exists(json)) throw new ModelLoadException(json, "tokenizer.json not found");
        var def = TokenizerJson.Load(json);
        string configPath = Path.Combine(modelDir, "tokenizer_config.json");
        var config = File.Exists(configPath) ? TokenizerConfig.Load(configPath) : TokenizerConfig.Empty;
        return new Tokenizer(TransformersTokenizerClass.Apply(def, config), config);
    }

    /// <summary>One more than the highest id in the vocabulary or the added tokens.</summary>
    public int VocabSize { get; }

    /// <summary>The beginning-of-sequence token named by tokenizer_config.json, if any.</summary>
    public string? BosToken => _config.BosToken;

    /// <summary>The end-of-sequence token named by tokenizer_config.json, if any.</summary>
    public string? EosToken => _config.EosToken;

    /// <summary>The padding token named by tokenizer_config.json, if any.</summary>
    public string? PadToken => _config.PadToken;

    /// <summary>Id of <see cref="BosToken"/>, when it is in the vocabulary.</summary>
    public int? BosTokenId { get; }

    /// <summary>Id of <see cref="EosToken"/>, when it is in the vocabulary.</summary>
    public int? EosTokenId { get; }

    /// <summary>Id of <see cref="PadToken"/>, when it is in the vocabulary.</summary>
    public int? PadTokenId { get; }

    /// <summary>
    /// Encodes text. Added tokens written in the text (such as <c>&lt;|im_start|&gt;</c>) become their ids.
    /// With <paramref name="addSpecialTokens"/>, the post-processor's tokens (and a BOS/EOS that
    /// tokenizer_config.json asks for) are added.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        bool startsText = true; // whether the next piece begins at offset 0 of the text
        foreach (var (raw, rawToken) in _rawMatcher.Split(text))
        {
            if (rawToken is not null) { ids.Add(rawToken.Id); startsText = false; continue; }
            string normalized = _def.Normalizer?.Apply(raw) ?? raw;
            foreach (var (plain, token) in _normalizedMatcher.Split(normalized))
            {
                if (token is not null) { ids.Add(token.Id); startsText = false; continue; }
                var words = _def.PreTokenizer?.Apply([plain], startsText) ?? [plain];
                foreach (var word in words) _def.Model.Encode(word, ids);
                startsText = false;
            }
        }
        if (!addSpecialTokens) return ids;

        if (_def.PostProcessor is not null) ids = _def.PostProcessor.Process(ids);
        if (_configAddsSpecials && _config.AddBosToken && BosTokenId is int bos) ids.Insert(0, bos);
        if (_configAddsSpecials && _config.AddEosToken && EosTokenId is int eos) ids.Add(eos);
        return ids;
    }

    /// <summary>
    /// Decodes ids to text; ids outside the vocabulary are ignored. With
    /// <paramref name="skipSpecialTokens"/>, added tokens marked special are left out.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (_tokenBytes != null) return DecodeByteLevel(ids, skipSpecialTokens);
        var tokens = new List<string>(ids.Count);
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecial(id)) continue;
            if (IdToToken(id) is string token) tokens.Add(token);
        }
        string text = _def.Decoder is null ? string.Join(' ', tokens) : string.Concat(_def.Decoder.DecodeChain(tokens));
        // clean_up_tokenization_spaces is not applied: transformers >= 5.7 (the goldens' 5.17 included)
        // ignores it for BPE models, the only kind Pagoda loads, because it deletes real spaces ("x != y").
        return text;
    }

    // A lone ByteLevel decoder turns the tokens' bytes, concatenated, into lossy UTF-8: the same text as the
    // chain above without its lists, since the incremental detokenizer decodes twice per generated token.
    private string DecodeByteLevel(IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        int total = 0;
        foreach (int id in ids)
        {
            if (!(skipSpecialTokens && IsSpecial(id)) && TokenBytes(id) is { } b) total += b.Length;
        }
        byte[]? rented = total > 256 ? System.Buffers.ArrayPool<byte>.Shared.Rent(total) : null;
        Span<byte> buffer = rented ?? stackalloc byte[256];
        int at = 0;
        foreach (int id in ids)
        {
            if (!(skipSpecialTokens && IsSpecial(id)) && TokenBytes(id) is { } b)
            {
                b.CopyTo(buffer[at..]);
                at += b.Length;
            }
        }
        string text = ByteLevelDecoder.Lossy.GetString(buffer[..at]);
        if (rented != null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        return text;
    }

    // Racing threads may both fill an entry; they write equal arrays, so either one is right.
    private byte[]? TokenBytes(int id)
    {
        if (IdToToken(id) is not string token) return null;
        if (_tokenBytes![id] is { } cached) return cached;
        var bytes = new List<byte>(token.Length);
        ByteLevel.AppendTokenBytes(token, bytes);
        return _tokenBytes[id] = bytes.ToArray();
    }

    /// <summary>The token string for an id, or null when the id is unknown.</summary>
    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <summary>The id of a token string (added tokens first), or null when unknown.</summary>
    public int? TokenToId(string token)
    {
        if (_addedByContent.TryGetValue(token, out var added)) return added.Id;
        return _def.Model.Vocab.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>The content of an added token (special or not), or null when the id is not one.</summary>
    internal string? AddedTokenContent(int id) => _addedById.TryGetValue(id, out var t) ? t.Content : null;

    internal bool HasAddedTokens => _addedById.Count > 0;

    /// <summary>
    /// Whether tokens are GPT-2 byte-level strings (a ByteLevel decoder, alone or in a sequence), so that
    /// the grammar engine can map each token back to the bytes it stands for.
    /// </summary>
    internal bool HasByteLevelDecoder => _def.Decoder is ByteLevelDecoder
        || (_def.Decoder is SequenceDecoder seq && seq.Steps.Any(d => d is ByteLevelDecoder));

    /// <summary>The bytes of a byte-level token string (GPT-2 table), as the ByteLevel decoder reads them.</summary>
    internal static byte[] ByteLevelBytes(string token)
    {
        var bytes = new List<byte>(token.Length);
        ByteLevel.AppendTokenBytes(token, bytes);
        return bytes.ToArray();
    }

    /// <summary>Whether the id is an added token marked special (skipped by skip-special decoding).</summary>
    public bool IsSpecial(int id) => _addedById.Count > 0 && _addedById.TryGetValue(id, out var t) && t.Special;
}
