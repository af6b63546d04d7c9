namespace Pagoda.Tokenization;

/// <summary>
/// Streaming detokenization with vLLM's prefix/read offsets: each new token decodes a short window of
/// recent tokens, and text is released only once it no longer ends in an incomplete UTF-8 sequence.
/// </summary>
public sealed class IncrementalDetokenizer
{
    private const int InitialWindow = 5; // tokens of context before the first output token
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids;
    private readonly System.Text.StringBuilder _text = new();
    private int _prefixOffset;
    private int _readOffset;

    /// <summary>Starts after the prompt (its last tokens give the first output token its leading-space context).</summary>
    public IncrementalDetokenizer(Tokenizer tokenizer, IReadOnlyList<int> promptTokenIds, bool skipSpecialTokens = true,
        bool spacesBetweenSpecialTokens = true)
    {
        _ = spacesBetweenSpecialTokens; // fast tokenizers decode special tokens without added spaces
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
        int start = Math.Max(0, promptTokenIds.Count - InitialWindow);
        _ids = promptTokenIds.Skip(start).ToList();
        _prefixOffset = 0;
        _readOffset = _ids.Count;
    }

    /// <summary>All output text so far.</summary>
    public string Text => _text.ToString();

    /// <summary>Appends one token and returns the text it completes (possibly empty).</summary>
    public string Push(int tokenId)
    {
        _ids.Add(tokenId);
        string prefix = _tokenizer.Decode(_ids.GetRange(_prefixOffset, _readOffset - _prefixOffset), _skipSpecialTokens);
        string full = _tokenizer.Decode(_ids.GetRange(_prefixOffset, _ids.Count - _prefixOffset), _skipSpecialTokens);
        if (full.Length <= prefix.Length || full.EndsWith('\uFFFD'))
            return "";
        string delta = full[prefix.Length..];
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        _text.Append(delta);
        return delta;
    }
}
