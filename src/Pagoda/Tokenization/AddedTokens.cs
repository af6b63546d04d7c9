namespace Pagoda.Tokenization;

/// <summary>An entry of tokenizer.json's "added_tokens".</summary>
internal sealed record AddedToken(
    int Id, string Content, bool Special, bool LStrip, bool RStrip, bool SingleWord, bool Normalized);

/// <summary>
/// Finds added tokens in text before the model sees it, like HF's AddedVocabulary: leftmost-longest
/// matches, extended over neighbouring whitespace for lstrip/rstrip, and rejected when single_word
/// and touching a word character.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private sealed class Node
    {
        public Dictionary<char, Node>? Children;
        public AddedToken? Token;
    }

    private readonly Node _root = new();

    /// <param name="tokens">The tokens to find, keyed by the text form to look for.</param>
    public AddedTokenMatcher(IEnumerable<(string Text, AddedToken Token)> tokens)
    {
        foreach (var (text, token) in tokens)
        {
            if (text.Length == 0) continue;
            var node = _root;
            foreach (char c in text)
            {
                node.Children ??= [];
                if (!node.Children.TryGetValue(c, out var child)) node.Children[c] = child = new Node();
                node = child;
            }
            node.Token ??= token;
        }
    }

    public bool IsEmpty => _root.Children is null;

    /// <summary>Splits text into runs of plain text (Token null) and matched added tokens.</summary>
    public List<(string Text, AddedToken? Token)> Split(string text)
    {
        var parts = new List<(string, AddedToken?)>();
        if (IsEmpty)
        {
            parts.Add((text, null));
            return parts;
        }
        int plainStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            var (token, end) = LongestAt(text, i);
            if (token is null) { i++; continue; }
            if (token.SingleWord && !(IsWordBoundary(text, i - 1) && IsWordBoundary(text, end)))
            {
                i = end; // HF resumes after a rejected match
                continue;
            }
            int start = i;
            if (token.LStrip) while (start > plainStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > plainStart) parts.Add((text[plainStart..start], null));
            parts.Add((text[start..end], token));
            plainStart = i = end;
        }
        if (plainStart < text.Length) parts.Add((text[plainStart..], null));
        return parts;
    }

    private (AddedToken? Token, int End) LongestAt(string text, int start)
    {
        AddedToken? best = null;
        int bestEnd = start;
        var node = _root;
        for (int j = start; j < text.Length; j++)
        {
            if (node.Children is null || !node.Children.TryGetValue(text[j], out node)) break;
            if (node.Token is not null) { best = node.Token; bestEnd = j + 1; }
        }
        return (best, bestEnd);
    }

    private static bool IsWordBoundary(string text, int index) =>
        index < 0 || index >= text.Length || !(char.IsLetterOrDigit(text[index]) || text[index] == '_');
}
