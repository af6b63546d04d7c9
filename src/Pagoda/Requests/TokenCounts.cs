namespace Pagoda.Requests;

/// <summary>
/// The distinct tokens of a request's prompt and output, with how often each occurs in the output: what the
/// repetition, frequency and presence penalties read. Kept up to date incrementally (a step reads only the tokens
/// appended since the last), so penalising a long sequence costs its new tokens, not its length.
/// </summary>
public sealed class TokenCounts
{
    private readonly Dictionary<int, int> _index = [];   // token -> entry
    private readonly List<int> _tokens = [];
    private readonly List<int> _outputCounts = [];
    private int _seen;                                    // tokens of AllTokenIds already counted

    /// <summary>Distinct tokens, in order of first occurrence.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    /// <summary>Output occurrences of each of <see cref="Tokens"/> (0 for a token seen only in the prompt).</summary>
    public IReadOnlyList<int> OutputCounts => _outputCounts;

    /// <summary>Counts the tokens appended since the last call (all of them at first).</summary>
    public TokenCounts Update(IReadOnlyList<int> allTokenIds, int promptLength)
    {
        for (; _seen < allTokenIds.Count; _seen++)
        {
            int token = allTokenIds[_seen];
            if (!_index.TryGetValue(token, out int entry))
            {
                _index[token] = entry = _tokens.Count;
                _tokens.Add(token);
                _outputCounts.Add(0);
            }
            if (_seen >= promptLength)
                _outputCounts[entry]++;
        }
        return this;
    }
}
