namespace Pagoda.StructuredOutput;

/// <summary>
/// Collects named rules (expressions over bytes and rule references) from a front end, then compiles each
/// into a DFA, checks the whole (<see cref="GrammarAnalysis"/>) and lays it out as a <see cref="PdaTables"/>.
/// Rules can be declared before they are defined, which is how recursive $ref and grammar rules work.
/// </summary>
internal sealed class GrammarBuilder(CompileBudget budget)
{
    private readonly List<string> _names = [];
    private readonly List<Expr?> _bodies = [];

    public CompileBudget Budget { get; } = budget;

    public int Declare(string name)
    {
        _names.Add(name);
        _bodies.Add(null);
        return _names.Count - 1;
    }

    public void Define(int rule, Expr body)
    {
        if (_bodies[rule] is not null) throw new InvalidOperationException("rule defined twice: " + _names[rule]);
        _bodies[rule] = body;
    }

    public bool IsDefined(int rule) => _bodies[rule] is not null;

    public int Add(string name, Expr body)
    {
        int id = Declare(name);
        Define(id, body);
        return id;
    }

    public PdaTables Build(int root)
    {
        var dfas = new List<List<DfaNode>>(_bodies.Count);
        for (int r = 0; r < _bodies.Count; r++)
        {
            var body = _bodies[r] ?? throw new GrammarException($"rule '{_names[r]}' is referenced but never defined");
            dfas.Add(Determinizer.Build(new Nfa(Budget, body), Budget));
        }
        GrammarAnalysis.Run(dfas, root, _names, Budget);
        return new PdaTables(dfas, root);
    }
}
