namespace Pagoda.StructuredOutput;

/// <summary>
/// Thompson NFA of one rule: edges on byte ranges, on calls of other rules, or epsilon. Stored as flat arrays
/// with per-state linked edge lists, since regex repetitions can make many states. Every state counts
/// against the compile's <see cref="CompileBudget"/>.
/// </summary>
internal sealed class Nfa
{
    public const int Epsilon = -1;
    public const int Call = -2;

    private readonly CompileBudget _budget;
    private readonly List<int> _firstEdge = [];
    private readonly List<(int Target, int Lo, int Hi, int Next)> _edges = [];

    public Nfa(CompileBudget budget, Expr body)
    {
        _budget = budget;
        Start = NewState();
        Final = Emit(body, Start);
    }

    public int Start { get; }

    public int Final { get; }

    public int StateCount => _firstEdge.Count;

    public int FirstEdge(int state) => _firstEdge[state];

    /// <summary>An edge: Lo = <see cref="Epsilon"/>, or Lo = <see cref="Call"/> with Hi the rule, or a byte range.</summary>
    public (int Target, int Lo, int Hi, int Next) Edge(int e) => _edges[e];

    private int NewState()
    {
        _budget.AddStates(1);
        _firstEdge.Add(-1);
        return _firstEdge.Count - 1;
    }

    private void AddEdge(int from, int to, int lo, int hi)
    {
        _edges.Add((to, lo, hi, _firstEdge[from]));
        _firstEdge[from] = _edges.Count - 1;
    }

    // Adds edges out of `start` and among new states only, never into `start`; returns the end state.
    // Recursion follows expression nesting, which the front ends bound by GrammarLimits.MaxNesting.
    private int Emit(Expr e, int start)
    {
        switch (e)
        {
            case ByteExpr b:
            {
                int s = NewState();
                AddEdge(start, s, b.Lo, b.Hi);
                return s;
            }
            case RefExpr r:
            {
                int s = NewState();
                AddEdge(start, s, Call, r.Rule);
                return s;
            }
            case SeqExpr seq:
            {
                int cur = start;
                foreach (var item in seq.Items) cur = Emit(item, cur);
                return cur;
            }
            case AltExpr alt:
            {
                int end = NewState();
                foreach (var item in alt.Items)
                {
                    int s = NewState();
                    AddEdge(start, s, Epsilon, 0);
                    AddEdge(Emit(item, s), end, Epsilon, 0);
                }
                return end;
            }
            case RepeatExpr rep:
                return EmitRepeat(rep, start);
            default:
                throw new InvalidOperationException("unknown expression " + e.GetType().Name);
        }
    }

    private int EmitRepeat(RepeatExpr rep, int start)
    {
        _budget.CheckRepeat(Math.Max(rep.Min, rep.Max));
        int cur = start;
        for (int i = 0; i < rep.Min; i++) cur = Emit(rep.Item, Fresh(cur));
        if (rep.Max < 0)
        {
            int loop = NewState();
            AddEdge(cur, loop, Epsilon, 0);
            AddEdge(Emit(rep.Item, loop), loop, Epsilon, 0);
            return loop;
        }
        int end = NewState();
        for (int i = rep.Min; i < rep.Max; i++)
        {
            AddEdge(cur, end, Epsilon, 0);
            cur = Emit(rep.Item, Fresh(cur));
        }
        AddEdge(cur, end, Epsilon, 0);
        return end;
    }

    // A copy of an item may loop back to its own start, so each copy starts at a state of its own.
    private int Fresh(int from)
    {
        int s = NewState();
        AddEdge(from, s, Epsilon, 0);
        return s;
    }
}
