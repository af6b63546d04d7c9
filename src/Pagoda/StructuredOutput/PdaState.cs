namespace Pagoda.StructuredOutput;

/// <summary>
/// A set of pushdown configurations after some bytes: the stacks whose top node can read another byte
/// (<see cref="Heads"/>), plus whether some stack finished the root rule (<see cref="Accepting"/>: EOS may
/// follow) or, in a context-free walk, left its starting rule (<see cref="Escaped"/>). Immutable; equal sets
/// compare equal, so states can key the mask cache.
/// </summary>
internal sealed class PdaState : IEquatable<PdaState>
{
    private readonly int _hash;

    private PdaState(Frame[] heads, bool accepting, bool escaped)
    {
        Heads = heads;
        Accepting = accepting;
        Escaped = escaped;
        var h = new HashCode();
        foreach (var f in heads) h.Add(f.Hash);
        h.Add(accepting);
        h.Add(escaped);
        _hash = h.ToHashCode();
    }

    public Frame[] Heads { get; }

    public bool Accepting { get; }

    public bool Escaped { get; }

    public bool IsDead => Heads.Length == 0 && !Accepting && !Escaped;

    /// <summary>A state of one head that is already closed (its node reads bytes).</summary>
    public static PdaState OfHead(Frame head) => new([head], false, false);

    /// <summary>The state before any byte: the root rule's start, closed.</summary>
    public static PdaState Start(PdaTables t, StepScratch scratch)
    {
        scratch.Seeds.Clear();
        scratch.Seeds.Add(new Frame(t.RuleStart[t.RootRule], null));
        return Close(t, scratch)!;
    }

    /// <summary>The closure of one configuration, or null when it is dead.</summary>
    public static PdaState? Closed(PdaTables t, Frame f, StepScratch scratch)
    {
        scratch.Seeds.Clear();
        scratch.Seeds.Add(f);
        return Close(t, scratch);
    }

    /// <summary>The state after one more byte, or null when no configuration can read it.</summary>
    public PdaState? Step(PdaTables t, byte b, StepScratch scratch)
    {
        if (Heads.Length == 1)
        {
            // The common case inside a rule: one stack, and the byte leads to a node with nothing to expand.
            var f = Heads[0];
            int next = t.Next(f.Node, b);
            if (next < 0) return null;
            if (t.IsPlain(next)) return new PdaState([new Frame(next, f.Parent)], false, false);
            scratch.Seeds.Clear();
            scratch.Seeds.Add(new Frame(next, f.Parent));
            return Close(t, scratch);
        }
        scratch.Seeds.Clear();
        foreach (var f in Heads)
        {
            int next = t.Next(f.Node, b);
            if (next >= 0) scratch.Seeds.Add(new Frame(next, f.Parent));
        }
        if (scratch.Seeds.Count == 0) return null;
        return Close(t, scratch);
    }

    // Expands calls (push the callee's start under a frame at the return node) and finals (pop) until every
    // configuration is a head. Terminates because left recursion is rejected at compile time and a
    // configuration seen once is not expanded again.
    private static PdaState? Close(PdaTables t, StepScratch s)
    {
        var seen = s.Seen;
        var work = s.Work;
        var heads = s.Heads;
        seen.Clear();
        heads.Clear();
        work.Clear();
        foreach (var f in s.Seeds) work.Push(f);
        bool accepting = false, escaped = false;
        while (work.Count > 0)
        {
            var f = work.Pop();
            if (!seen.Add(f)) continue;
            int node = f.Node;
            if (t.HasBytes(node)) heads.Add(f);
            int calls = t.CallCount(node);
            for (int i = 0; i < calls; i++)
            {
                var (rule, target) = t.CallAt(node, i);
                work.Push(new Frame(t.RuleStart[rule], new Frame(target, f.Parent)));
            }
            if (!t.IsFinal(node)) continue;
            if (f.Parent is null) accepting = true;
            else if (ReferenceEquals(f.Parent, Frame.Escape)) escaped = true;
            else work.Push(f.Parent);
        }
        if (heads.Count == 0 && !accepting && !escaped) return null;
        var array = heads.ToArray();
        if (array.Length > 1) Array.Sort(array, static (a, b) => a.Hash.CompareTo(b.Hash));
        return new PdaState(array, accepting, escaped);
    }

    public override int GetHashCode() => _hash;

    public override bool Equals(object? obj) => obj is PdaState s && Equals(s);

    public bool Equals(PdaState? other)
    {
        if (other is null || other._hash != _hash || other.Heads.Length != Heads.Length) return false;
        if (other.Accepting != Accepting || other.Escaped != Escaped) return false;
        for (int i = 0; i < Heads.Length; i++) if (!Heads[i].Equals(other.Heads[i])) return false;
        return true;
    }
}

/// <summary>Reusable collections for <see cref="PdaState.Step"/>; one per thread of work, never shared.</summary>
internal sealed class StepScratch
{
    public List<Frame> Seeds { get; } = [];
    public HashSet<Frame> Seen { get; } = [];
    public Stack<Frame> Work { get; } = new();
    public List<Frame> Heads { get; } = [];
}
