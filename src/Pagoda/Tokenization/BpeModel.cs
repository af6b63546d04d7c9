using System.Collections.Concurrent;
using System.Text;

namespace Pagoda.Tokenization;

/// <summary>Options of an HF "BPE" model besides vocab and merges.</summary>
internal sealed record BpeOptions(
    string? UnkToken, bool FuseUnk, bool ByteFallback, bool IgnoreMerges,
    string? ContinuingSubwordPrefix, string? EndOfWordSuffix);

/// <summary>
/// HF's BPE model: a word starts as one symbol per character and the adjacent pair with the lowest
/// merge rank (leftmost on ties) is merged until none applies. Results are cached per word.
/// </summary>
internal sealed class BpeModel
{
    private const int CacheLimit = 100_000;
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly BpeOptions _options;
    private readonly int? _unkId;
    private readonly int[] _byteIds; // <0xXX> ids for byte fallback, -1 where missing
    private readonly int[] _charIds; // id of each one-character BMP token, -1 where missing
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int Rank, int NewId)> merges, BpeOptions options)
    {
        _vocab = vocab;
        _merges = merges;
        _options = options;
        _unkId = options.UnkToken is { } unk && vocab.TryGetValue(unk, out int u) ? u : null;
        _byteIds = new int[256];
        for (int b = 0; b < 256; b++)
            _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        // Looking symbols up by char instead of by one-char string saves an allocation and a string
        // hash per character, which is most of the time spent on words too long for the cache.
        _charIds = new int[char.MaxValue + 1];
        Array.Fill(_charIds, -1);
        foreach (var (token, id) in vocab)
            if (token.Length == 1 && !char.IsSurrogate(token[0])) _charIds[token[0]] = id;
    }

    public static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// Hashes pair keys well. long's own hash XORs the halves, so every (x, x) pair lands in one bucket
    /// and a 300-character word of one letter took milliseconds to merge.
    /// </summary>
    public sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    public BpeOptions Options => _options;

    /// <summary>The same vocab and merges with other options (and a fresh cache).</summary>
    public BpeModel WithOptions(BpeOptions options) => new(_vocab, _merges, options);

    /// <summary>Appends the ids of one pre-token to <paramref name="output"/>.</summary>
    public void Encode(string word, List<int> output)
    {
        if (_cache.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        int[] ids = _options.IgnoreMerges && _vocab.TryGetValue(word, out int whole) ? [whole] : Merge(word);
        if (word.Length < MaxCachedWordLength)
        {
            if (_cache.Count >= CacheLimit) _cache.Clear();
            _cache[word] = ids;
        }
        output.AddRange(ids);
    }

    private int[] Merge(string word)
    {
        var symbols = InitialSymbols(word);
        int n = symbols.Count;
        if (n == 0) return [];
        var ids = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }

        // Priority is (rank, position): lowest rank first, leftmost among equal ranks, as in HF.
        var queue = new PriorityQueue<(int Pos, int NewId), long>();
        for (int i = 0; i + 1 < n; i++) Push(i);

        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (!alive[pos] || next[pos] < 0) continue;
            int right = next[pos];
            if (!_merges.TryGetValue(PairKey(ids[pos], ids[right]), out var m) || m.NewId != top.NewId) continue;

            ids[pos] = m.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0) Push(prev[pos]);
            Push(pos);
        }

        var result = new List<int>(n);
        for (int i = 0; i >= 0; i = next[i]) result.Add(ids[i]);
        return result.ToArray();

        void Push(int pos)
        {
            int right = next[pos];
            if (right >= 0 && _merges.TryGetValue(PairKey(ids[pos], ids[right]), out var m))
                queue.Enqueue((pos, m.NewId), ((long)m.Rank << 32) | (uint)pos);
        }
    }

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        if (string.IsNullOrEmpty(_options.ContinuingSubwordPrefix) && string.IsNullOrEmpty(_options.EndOfWordSuffix))
        {
            int i = 0;
            for (; i < word.Length && !char.IsSurrogate(word[i]) && _charIds[word[i]] >= 0; i++) symbols.Add(_charIds[word[i]]);
            if (i == word.Length) return symbols; // every character has its own token: the usual byte-level case
            symbols.Clear();
        }
        bool lastWasUnk = false;
        int index = 0;
        int count = word.EnumerateRunes().Count();
        foreach (Rune rune in word.EnumerateRunes())
        {
            string piece = rune.ToString();
            if (index > 0 && !string.IsNullOrEmpty(_options.ContinuingSubwordPrefix))
                piece = _options.ContinuingSubwordPrefix + piece;
            if (index == count - 1 && !string.IsNullOrEmpty(_options.EndOfWordSuffix))
                piece += _options.EndOfWordSuffix;
            index++;

            if (_vocab.TryGetValue(piece, out int id))
            {
                symbols.Add(id);
                lastWasUnk = false;
                continue;
            }
            if (_options.ByteFallback && TryByteFallback(rune, symbols))
            {
                lastWasUnk = false;
                continue;
            }
            // Without an unk token HF drops the character.
            if (_unkId is int unk)
            {
                if (!(_options.FuseUnk && lastWasUnk)) symbols.Add(unk);
                lastWasUnk = true;
            }
        }
        return symbols;
    }

    private bool TryByteFallback(Rune rune, List<int> symbols)
    {
        Span<byte> utf8 = stackalloc byte[4];
        int len = rune.EncodeToUtf8(utf8);
        for (int i = 0; i < len; i++)
            if (_byteIds[utf8[i]] < 0) return false;
        for (int i = 0; i < len; i++) symbols.Add(_byteIds[utf8[i]]);
        return true;
    }
}
