namespace Pagoda.Requests;

/// <summary>
/// The distinct tokens of a request's prompt and output, with how often each occurs in the output: what the
/// repetition, frequency and presence penalties read. Kept up to date incrementally (a step reads only the tokens
/// appended since the last), so penalising a long sequence costs its new tokens, not its length. The entries are
/// stored as the device takes them, (token, output count) pairs in order of first occurrence, so a step copies
/// them in one block.
/// </summary>
public sealed class TokenCounts
{
    private readonly Dictionary<int, int> _index = [];   // token -> entry
    private int[] _pairs = new int[64];                   // [entry] = (token, output count)
    private int[] _firstAt = new int[32];                 // [entry] = the position that created it
    private int _count;                                   // entries
    private int _seen;                                    // tokens of AllTokenIds already counted

    /// <summary>How many distinct tokens there are.</summary>
    public int Count => _count;

    /// <summary>(token, output count) of each distinct token in order of first occurrence (count 0: prompt only).</summary>
    public ReadOnlySpan<int> Pairs => _pairs.AsSpan(0, 2 * _count);

    /// <summary>Counts the tokens appended since the last call (all of them at first).</summary>
    public TokenCounts Update(IReadOnlyList<int> allTokenIds, int promptLength)
    {
        for (; _seen < allTokenIds.Count; _seen++)
        {
            int token = allTokenIds[_seen];
            if (!_index.TryGetValue(token, out int entry))
            {
                _index[token] = entry = _count++;
                if (2 * _count > _pairs.Length)
                    Array.Resize(ref _pairs, 2 * _pairs.Length);
                if (_count > _firstAt.Length)
                    Array.Resize(ref _firstAt, 2 * _firstAt.Length);
                (_pairs[2 * entry], _pairs[2 * entry + 1]) = (token, 0);
                _firstAt[entry] = _seen;
            }
            if (_seen >= promptLength)
                _pairs[2 * entry + 1]++;
        }
        return this;
    }

    /// <summary>
    /// Uncounts the tokens from position <paramref name="length"/> on, before they leave <paramref name="allTokenIds"/>
    /// (speculative decoding's draft tokens, appended while their rows are verified). Entries those tokens created
    /// are the newest, so they go from the end.
    /// </summary>
    public void Truncate(IReadOnlyList<int> allTokenIds, int promptLength, int length)
    {
        while (_seen > length)
        {
            _seen--;
            int entry = _index[allTokenIds[_seen]];
            if (_seen >= promptLength)
                _pairs[2 * entry + 1]--;
            if (_firstAt[entry] == _seen)
            {
                _index.Remove(allTokenIds[_seen]);
                _count--;
            }
        }
    }
}
