namespace Pagoda.StructuredOutput;

/// <summary>
/// What one automaton node allows, independent of the stack below it: tokens certainly accepted from this
/// node (as a bitmask), and tokens whose fate depends on the rules below (they finish the node's rule with
/// bytes left over), listed in trie order with their shared prefix lengths.
/// </summary>
internal sealed class NodeMask(int[] accepted, int[] uncertain, int[] uncertainLcp)
{
    public int[] Accepted { get; } = accepted;
    public int[] Uncertain { get; } = uncertain;
    public int[] UncertainLcp { get; } = uncertainLcp;
}

/// <summary>
/// Token masks of one compiled grammar. The xgrammar idea: most tokens are decided by the top node of a
/// stack alone ("context-independent"), so each node's verdicts are computed once by walking the vocabulary
/// trie from that node with an <see cref="Frame.Escape"/> bottom, and cached. Only the uncertain rest is
/// walked against the real stack. Whole masks are also cached per full state (bounded), since generation
/// revisits the same states (inside a string, between properties). Thread-safe: caches tolerate races.
/// </summary>
internal sealed class TokenMasker
{
    private const long StateCacheBytes = 64L << 20;
    private readonly PdaTables _t;
    private readonly TokenVocabulary _vocab;
    private readonly NodeMask?[] _nodes;
    private readonly Dictionary<PdaState, int[]> _states = [];
    private readonly int _maxStates;

    public TokenMasker(PdaTables tables, TokenVocabulary vocab)
    {
        _t = tables;
        _vocab = vocab;
        _nodes = new NodeMask?[tables.NodeCount];
        _maxStates = (int)Math.Max(16, StateCacheBytes / (4L * vocab.BitmaskWords));
    }

    public void Fill(PdaState state, Span<int> mask, StepScratch scratch)
    {
        lock (_states)
        {
            if (_states.TryGetValue(state, out var cached)) { cached.CopyTo(mask); return; }
        }
        mask.Clear();
        foreach (var head in state.Heads)
        {
            var node = ForNode(head.Node, scratch);
            Or(mask, node.Accepted);
            if (node.Uncertain.Length > 0) AddUncertain(head, node, mask, scratch);
        }
        if (state.Accepting) foreach (int eos in _vocab.EosTokenIds) mask[eos >> 5] |= 1 << (eos & 31);
        var copy = mask.ToArray();
        lock (_states)
        {
            if (_states.Count >= _maxStates) _states.Clear();
            _states[state] = copy;
        }
    }

    private static void Or(Span<int> mask, int[] bits)
    {
        var m = System.Runtime.InteropServices.MemoryMarshal.Cast<int, System.Numerics.Vector<int>>(mask);
        var b = System.Runtime.InteropServices.MemoryMarshal.Cast<int, System.Numerics.Vector<int>>(bits.AsSpan());
        for (int i = 0; i < m.Length; i++) m[i] |= b[i];
        for (int i = m.Length * System.Numerics.Vector<int>.Count; i < mask.Length; i++) mask[i] |= bits[i];
    }

    public NodeMask ForNode(int node, StepScratch scratch)
    {
        var known = Volatile.Read(ref _nodes[node]);
        if (known is not null) return known;
        var computed = Compute(node, scratch);
        Volatile.Write(ref _nodes[node], computed);
        return computed;
    }

    // Walks the trie in preorder from the node alone. A token is accepted when some path consumes all of
    // it; rejected when every path dies inside the node's rule; uncertain when a path left the rule
    // (escaped) before the token ended, since then the rules below the node decide.
    private NodeMask Compute(int node, StepScratch scratch)
    {
        var trie = _vocab.Trie;
        int n = trie.NodeByte.Length;
        var states = new Slot[trie.MaxTokenLength + 1];
        var escaped = new bool[trie.MaxTokenLength + 1];
        states[0] = new Slot(node, Frame.Escape, null);
        var accepted = new int[_vocab.BitmaskWords];
        var uncertain = new List<int>();
        var order = trie.OrderedTokens;
        int i = 1;
        while (i < n)
        {
            int d = trie.NodeDepth[i];
            if (!Step(states[d - 1], trie.NodeByte[i], scratch, out var s))
            {
                if (escaped[d - 1]) AddRange(uncertain, trie.NodeTokenStart[i], trie.TokenPositionAt(trie.SubtreeEnd[i]));
                i = trie.SubtreeEnd[i];
                continue;
            }
            states[d] = s;
            escaped[d] = escaped[d - 1] || (s.Full?.Escaped ?? false);
            for (int k = trie.NodeTokenStart[i]; k < trie.NodeTokenEnd[i]; k++)
                accepted[order[k] >> 5] |= 1 << (order[k] & 31);
            if (s.Full is { Heads.Length: 0 })
            {
                // Nothing more can be read here; longer tokens depend on the stack below, if we escaped.
                if (escaped[d]) AddRange(uncertain, trie.NodeTokenEnd[i], trie.TokenPositionAt(trie.SubtreeEnd[i]));
                i = trie.SubtreeEnd[i];
                continue;
            }
            i++;
        }
        var list = uncertain.ToArray();
        var lcp = new int[list.Length];
        for (int j = 1; j < list.Length; j++)
        {
            int m = int.MaxValue;
            for (int k = list[j - 1] + 1; k <= list[j]; k++) m = Math.Min(m, trie.SortedLcp[k]);
            lcp[j] = m;
        }
        return new NodeMask(accepted, list, lcp);
    }

    /// <summary>
    /// A walk state without allocation in the common case: one stack whose top is a plain node (Node,
    /// Parent), or else a full <see cref="PdaState"/>.
    /// </summary>
    private readonly record struct Slot(int Node, Frame? Parent, PdaState? Full);

    private bool Step(in Slot from, byte b, StepScratch scratch, out Slot to)
    {
        if (from.Full is null)
        {
            int next = _t.Next(from.Node, b);
            if (next < 0) { to = default; return false; }
            if (_t.IsPlain(next)) { to = new Slot(next, from.Parent, null); return true; }
            var closed = PdaState.Closed(_t, new Frame(next, from.Parent), scratch);
            to = new Slot(0, null, closed);
            return closed is not null;
        }
        var s = from.Full.Step(_t, b, scratch);
        to = new Slot(0, null, s);
        return s is not null;
    }

    private static void AddRange(List<int> into, int from, int to)
    {
        for (int k = from; k < to; k++) into.Add(k);
    }

    // The uncertain tokens of one head, walked against its real stack in trie order so that consecutive
    // tokens reuse the states of their shared prefix.
    private void AddUncertain(Frame head, NodeMask node, Span<int> mask, StepScratch scratch)
    {
        var states = new Slot[_vocab.Trie.MaxTokenLength + 1];
        states[0] = new Slot(head.Node, head.Parent, null);
        int valid = 0; // states[0..valid] hold the previous token's prefix states
        var order = _vocab.Trie.OrderedTokens;
        for (int j = 0; j < node.Uncertain.Length; j++)
        {
            int id = order[node.Uncertain[j]];
            var bytes = _vocab.TokenBytes(id)!;
            int l = j == 0 ? 0 : node.UncertainLcp[j];
            if (valid < l) continue; // the previous token died inside the prefix this one shares
            int d = l;
            for (; d < bytes.Length; d++)
            {
                if (!Step(states[d], bytes[d], scratch, out var s)) break;
                states[d + 1] = s;
            }
            valid = d;
            if (d == bytes.Length) mask[id >> 5] |= 1 << (id & 31);
        }
    }
}
