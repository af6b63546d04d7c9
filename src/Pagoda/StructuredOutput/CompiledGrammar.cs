namespace Pagoda.StructuredOutput;

/// <summary>
/// One compiled grammar for one vocabulary: the pushdown automaton, its start state, and the token-mask
/// caches every matcher of this grammar shares. Immutable apart from those caches, which are thread-safe;
/// <see cref="GrammarCompiler"/> caches instances by their source.
/// </summary>
public sealed class CompiledGrammar
{
    internal CompiledGrammar(PdaTables tables, TokenVocabulary vocab, string description)
    {
        Tables = tables;
        Vocabulary = vocab;
        Description = description;
        Start = PdaState.Start(tables, new StepScratch());
        Masker = new TokenMasker(tables, vocab);
    }

    public TokenVocabulary Vocabulary { get; }

    /// <summary>What was compiled (kind and a prefix of the source), for logs.</summary>
    public string Description { get; }

    /// <summary>Number of automaton nodes (all rules' DFA states).</summary>
    public int NodeCount => Tables.NodeCount;

    internal PdaTables Tables { get; }

    internal PdaState Start { get; }

    internal TokenMasker Masker { get; }
}
