namespace Pagoda.StructuredOutput;

/// <summary>
/// The vocabulary's byte strings as a trie laid out in preorder: node i has a byte, a depth, the index just
/// past its subtree (so a walk skips a dead prefix in one jump) and the tokens ending at it. Node 0 is the
/// root (the empty prefix). Tokens are also listed in trie order with the common prefix length of each with
/// its predecessor, which lets a walk over any sorted subset reuse the states of shared prefixes.
/// </summary>
internal sealed class TokenTrie
{
    public TokenTrie(byte[]?[] tokens)
    {
        var ids = Enumerable.Range(0, tokens.Length).Where(i => tokens[i] is { Length: > 0 }).ToArray();
        Array.Sort(ids, (a, b) => { int c = tokens[a].AsSpan().SequenceCompareTo(tokens[b]); return c != 0 ? c : a.CompareTo(b); });
        var bytes = new List<byte> { 0 };
        var depth = new List<int> { 0 };
        var path = new List<int> { 0 }; // node index at each depth of the current path
        OrderedTokens = ids;
        SortedLcp = new int[ids.Length];
        TokenNode = new int[ids.Length];
        byte[] prev = [];
        for (int k = 0; k < ids.Length; k++)
        {
            byte[] t = tokens[ids[k]]!;
            int lcp = 0;
            while (lcp < prev.Length && lcp < t.Length && prev[lcp] == t[lcp]) lcp++;
            SortedLcp[k] = lcp;
            path.RemoveRange(lcp + 1, path.Count - lcp - 1);
            for (int d = lcp; d < t.Length; d++)
            {
                bytes.Add(t[d]);
                depth.Add(d + 1);
                path.Add(bytes.Count - 1);
            }
            TokenNode[k] = path[t.Length];
            MaxTokenLength = Math.Max(MaxTokenLength, t.Length);
            prev = t;
        }
        NodeByte = bytes.ToArray();
        NodeDepth = depth.ToArray();
        // Tokens of node i are those k with TokenNode[k] == i; they are contiguous from TokStart[i].
        NodeTokenStart = new int[NodeByte.Length];
        NodeTokenEnd = new int[NodeByte.Length];
        SubtreeEnd = new int[NodeByte.Length];
        int kk = 0;
        for (int i = 0; i < NodeByte.Length; i++)
        {
            NodeTokenStart[i] = kk;
            while (kk < ids.Length && TokenNode[kk] == i) kk++;
            NodeTokenEnd[i] = kk;
        }
        var open = new Stack<int>();
        for (int i = 0; i < NodeByte.Length; i++)
        {
            while (open.Count > 0 && NodeDepth[open.Peek()] >= NodeDepth[i]) SubtreeEnd[open.Pop()] = i;
            open.Push(i);
        }
        while (open.Count > 0) SubtreeEnd[open.Pop()] = NodeByte.Length;
    }

    public byte[] NodeByte { get; }
    public int[] NodeDepth { get; }
    public int[] SubtreeEnd { get; }

    /// <summary>Token positions (indexes into <see cref="OrderedTokens"/>) ending at each node: [start, end).</summary>
    public int[] NodeTokenStart { get; }
    public int[] NodeTokenEnd { get; }

    /// <summary>Token ids in byte order.</summary>
    public int[] OrderedTokens { get; }

    /// <summary>Common prefix length of each ordered token with the one before it.</summary>
    public int[] SortedLcp { get; }

    /// <summary>The trie node where each ordered token ends.</summary>
    public int[] TokenNode { get; }

    public int MaxTokenLength { get; }

    /// <summary>First token position at or after trie node <paramref name="node"/> (node count = past the end).</summary>
    public int TokenPositionAt(int node) => node < NodeTokenStart.Length ? NodeTokenStart[node] : OrderedTokens.Length;
}
