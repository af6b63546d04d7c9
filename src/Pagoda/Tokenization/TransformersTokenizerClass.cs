namespace Pagoda.Tokenization;

/// <summary>
/// What transformers v5 does to tokenizer.json for tokenizer classes with their own constructor. HF's
/// AutoTokenizer picks the class named by tokenizer_config.json's <c>tokenizer_class</c>; for
/// <c>LlamaTokenizer</c>/<c>LlamaTokenizerFast</c> it keeps only the vocab, merges, added tokens and
/// post-processor of tokenizer.json and builds the rest itself (SentencePiece-style Metaspace, byte
/// fallback, no normalizer). The golden outputs in tests/fixtures were made this way, and so are the
/// ids vLLM feeds such a model, so Pagoda follows it even where it disagrees with tokenizer.json
/// (DeepSeek-V3 says LlamaTokenizerFast over a byte-level vocab: spaces and unknown characters vanish).
/// </summary>
internal static class TransformersTokenizerClass
{
    private const char Metaspace = '\u2581';

    public static TokenizerDefinition Apply(TokenizerDefinition def, TokenizerConfig config) =>
        config.TokenizerClass is "LlamaTokenizer" or "LlamaTokenizerFast" ? Llama(def, config) : def;

    private static TokenizerDefinition Llama(TokenizerDefinition def, TokenizerConfig config)
    {
        bool addPrefixSpace = config.AddPrefixSpace ?? true;
        // v5's LlamaTokenizer defaults legacy to false, which prepends ▁ only at the very start of the text.
        bool legacy = config.Legacy ?? false;
        var scheme = !addPrefixSpace ? PrependScheme.Never : legacy ? PrependScheme.Always : PrependScheme.First;

        // The rebuilt BPE has no unk token: characters without a token or <0xXX> bytes are dropped.
        var model = def.Model.WithOptions(new BpeOptions(
            UnkToken: null, FuseUnk: true, ByteFallback: true, IgnoreMerges: false,
            ContinuingSubwordPrefix: null, EndOfWordSuffix: null));
        var decoders = new List<Decoder>
        {
            new ReplaceDecoder(Metaspace.ToString(), " "), new ByteFallbackDecoder(), new FuseDecoder(),
        };
        if (addPrefixSpace) decoders.Add(new StripDecoder(' ', 1, 0));

        return def with
        {
            Model = model,
            Normalizer = null,
            PreTokenizer = new MetaspacePreTokenizer(Metaspace, scheme, split: false),
            Decoder = new SequenceDecoder(decoders),
        };
    }
}
