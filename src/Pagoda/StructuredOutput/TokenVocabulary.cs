using System.Globalization;
using System.Text;
using Pagoda.Tokenization;

namespace Pagoda.StructuredOutput;

/// <summary>
/// Every token id of a model's vocabulary as the raw bytes it adds to the text, with the byte trie the mask
/// walks. Special and added tokens, and ids the tokenizer does not know, have no bytes: a grammar never
/// allows them (EOS ids are handled separately). Build once per model; immutable and thread-safe.
/// </summary>
public sealed class TokenVocabulary
{
    private readonly byte[]?[] _bytes;
    private readonly bool[] _isEos;

    internal TokenVocabulary(byte[]?[] bytes, IReadOnlyCollection<int> eosTokenIds)
    {
        _bytes = bytes;
        _isEos = new bool[bytes.Length];
        var eos = new List<int>();
        foreach (int id in eosTokenIds)
        {
            if (id < 0 || id >= bytes.Length) continue;
            _isEos[id] = true;
            _bytes[id] = null;
            eos.Add(id);
        }
        EosTokenIds = eos.Distinct().Order().ToArray();
        Trie = new TokenTrie(_bytes);
    }

    /// <summary>
    /// Reads every token of a tokenizer. Byte-level BPE tokens go back through the GPT-2 byte table;
    /// otherwise (SentencePiece-style) '▁' is a space and &lt;0xNN&gt; is that byte. Ids at or above
    /// <paramref name="modelVocabSize"/> are dropped; ids the tokenizer lacks (padding rows) get no bytes.
    /// </summary>
    public static TokenVocabulary FromTokenizer(Tokenizer tokenizer, int modelVocabSize, IReadOnlyCollection<int> eosTokenIds)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(eosTokenIds);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(modelVocabSize);
        bool byteLevel = tokenizer.HasByteLevelDecoder;
        var bytes = new byte[]?[modelVocabSize];
        for (int id = 0; id < modelVocabSize; id++)
        {
            if (tokenizer.AddedTokenContent(id) is not null) continue;
            if (tokenizer.IdToToken(id) is not string token || token.Length == 0) continue;
            bytes[id] = byteLevel ? Tokenizer.ByteLevelBytes(token) : SentencePieceBytes(token);
        }
        return new TokenVocabulary(bytes, eosTokenIds);
    }

    /// <summary>A vocabulary from explicit byte strings (null = never allowed), for tests and tools.</summary>
    public static TokenVocabulary FromBytes(IReadOnlyList<byte[]?> tokens, IReadOnlyCollection<int> eosTokenIds) =>
        new(tokens.Select(t => t?.ToArray()).ToArray(), eosTokenIds);

    private static byte[] SentencePieceBytes(string token)
    {
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
            return [b];
        return Encoding.UTF8.GetBytes(token.Replace('\u2581', ' '));
    }

    /// <summary>Number of ids, the model's logits width.</summary>
    public int Size => _bytes.Length;

    /// <summary>Ints in a token bitmask: ceil(Size / 32).</summary>
    public int BitmaskWords => (Size + 31) / 32;

    public IReadOnlyList<int> EosTokenIds { get; }

    public bool IsEos(int id) => id >= 0 && id < _isEos.Length && _isEos[id];

    /// <summary>The bytes of a token, or null when a grammar never allows it.</summary>
    public byte[]? TokenBytes(int id) => id >= 0 && id < _bytes.Length ? _bytes[id] : null;

    internal TokenTrie Trie { get; }
}
