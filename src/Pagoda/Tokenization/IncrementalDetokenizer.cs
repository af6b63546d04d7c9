namespace Pagoda.Tokenization;

/// <summary>
/// Turns output tokens into text one token at a time, the way vLLM's detokenizer does for tokenizers
/// loaded from tokenizer.json (HF <c>DecodeStream</c>, primed with the end of the prompt). Each delta is
/// the growth of the decode of a short window of recent tokens, so a token costs the same however long
/// the sequence is; text is held back while that decode ends in U+FFFD (an incomplete UTF-8 character).
/// </summary>
/// <remarks>
/// For byte-level tokenizers <see cref="Text"/> equals <c>tokenizer.Decode(outputIds, skipSpecialTokens)</c>
/// once the output ends on a complete character. Where the decoder strips a leading space (Llama 2 style
/// Metaspace), the prompt gives the first token its context, so the text keeps the space that decoding
/// the output alone would strip, exactly as vLLM's output text does.
/// </remarks>
public sealed class IncrementalDetokenizer
{
    // vLLM primes with the shortest prompt suffix of at least 4 and under 24 tokens that decodes cleanly.
    private const int MinPrimeTokens = 4;
    private const int MaxPrimeTokens = 24;

    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly bool _spacesBetweenSpecialTokens;
    private readonly List<int> _window = [];
    private readonly System.Text.StringBuilder _text = new();
    private string _prefix = "";
    private int _prefixIndex;
    private bool _lastWasAdded;

    /// <summary>Starts a detokenizer for one request.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="promptTokenIds">The prompt; its last tokens are context for the first output token.</param>
    /// <param name="skipSpecialTokens">Leave special added tokens out of the text.</param>
    /// <param name="spacesBetweenSpecialTokens">When false (and specials are kept), an added token that follows
    /// another added token contributes its raw content, as in vLLM.</param>
    public IncrementalDetokenizer(Tokenizer tokenizer, IReadOnlyList<int> promptTokenIds,
        bool skipSpecialTokens = true, bool spacesBetweenSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(promptTokenIds);
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
        // vLLM: skipping specials makes the setting moot; without added tokens there is nothing to do.
        _spacesBetweenSpecialTokens = skipSpecialTokens || spacesBetweenSpecialTokens || !tokenizer.HasAddedTokens;
        foreach (int id in PrimingSuffix(promptTokenIds)) Step(id);
    }

    /// <summary>All output text so far: the concatenation of every delta <see cref="Push"/> returned.</summary>
    public string Text => _text.ToString();

    /// <summary>How many tokens the decode window holds now (tests check that it stays small).</summary>
    internal int WindowLength => _window.Count;

    /// <summary>Appends one output token and returns the text it completes (often "", never a partial character).</summary>
    public string Push(int tokenId)
    {
        string delta = Step(tokenId);
        if (!_spacesBetweenSpecialTokens)
        {
            string? added = _tokenizer.AddedTokenContent(tokenId);
            if (added is not null && _lastWasAdded) delta = added;
            _lastWasAdded = added is not null;
        }
        _text.Append(delta);
        return delta;
    }

    private IEnumerable<int> PrimingSuffix(IReadOnlyList<int> prompt)
    {
        int count = prompt.Count;
        if (count > MinPrimeTokens)
        {
            for (int n = MinPrimeTokens; n < Math.Min(count + 1, MaxPrimeTokens); n++)
            {
                var suffix = Slice(prompt, count - n, n);
                if (!_tokenizer.Decode(suffix, skipSpecialTokens: true).Contains('\uFFFD')) return suffix;
            }
        }
        return prompt;
    }

    private static int[] Slice(IReadOnlyList<int> list, int start, int length)
    {
        var result = new int[length];
        for (int i = 0; i < length; i++) result[i] = list[start + i];
        return result;
    }

    // One DecodeStream step: decode the window with the new token; emit what grew past the prefix unless
    // it ends in U+FFFD; then keep only the tokens from the last emission on.
    private string Step(int tokenId)
    {
        _window.Add(tokenId);
        string decoded = _tokenizer.Decode(_window, _skipSpecialTokens);
        if (decoded.Length <= _prefix.Length || decoded.EndsWith('\uFFFD')) return "";
        if (!decoded.StartsWith(_prefix, StringComparison.Ordinal))
        {
            // An invalid byte run can rewrite text already emitted (HF turns every byte of it into U+FFFD);
            // like vLLM, start over from this token rather than emit text that contradicts the past.
            _window.Clear();
            _prefix = "";
            _prefixIndex = 0;
            return Step(tokenId);
        }
        string delta = decoded[_prefix.Length..];
        int nextPrefixIndex = _window.Count - _prefixIndex;
        _window.RemoveRange(0, _prefixIndex);
        _prefix = _tokenizer.Decode(_window, _skipSpecialTokens);
        _prefixIndex = nextPrefixIndex;
        return delta;
    }
}
