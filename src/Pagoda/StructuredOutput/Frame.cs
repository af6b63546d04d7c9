namespace Pagoda.StructuredOutput;

/// <summary>
/// One frame of a pushdown stack: the node the frame is at, and the frame below it (whose node is where the
/// rule returns to). Immutable and shared between stacks, so a step copies nothing below the top. Equality
/// is structural and iterative (stacks grow with the output, so no recursion over them).
/// </summary>
internal sealed class Frame : IEquatable<Frame>
{
    /// <summary>
    /// The bottom marker of a context-free walk (mask precomputation): popping into it means the token
    /// left the rule it started in, so the answer depends on the real stack below.
    /// </summary>
    public static readonly Frame Escape = new(-1, null);

    public Frame(int node, Frame? parent)
    {
        Node = node;
        Parent = parent;
        Hash = HashCode.Combine(node, parent?.Hash ?? 0x5bd1e995);
    }

    public int Node { get; }

    public Frame? Parent { get; }

    public int Hash { get; }

    public override int GetHashCode() => Hash;

    public override bool Equals(object? obj) => obj is Frame f && Equals(f);

    public bool Equals(Frame? other)
    {
        Frame? a = this, b = other;
        while (true)
        {
            if (ReferenceEquals(a, b)) return true;
            if (a is null || b is null || a.Hash != b.Hash || a.Node != b.Node) return false;
            a = a.Parent;
            b = b.Parent;
        }
    }
}
