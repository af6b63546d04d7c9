using System.Text;
using Pagoda.Requests;
using Pagoda.StructuredOutput;

namespace Pagoda.Tests.Engine;

/// <summary>
/// With a reasoning model, a structured output constrains only what follows the end of reasoning (as vLLM does):
/// tokens before the end token leave the grammar untouched; from the end token on it applies.
/// </summary>
public class ReasoningGrammarTests
{
    // A vocabulary of single letters, "{", "}", "<think>", "</think>" and EOS.
    private static readonly string[] Words = ["a", "b", "{", "}", "<think>", "</think>"];
    private const int End = 5, Eos = 6;

    private static Request Make(bool endedInPrompt)
    {
        var vocab = TokenVocabulary.FromBytes([.. Words.Select(w => (byte[]?)Encoding.UTF8.GetBytes(w)), null], [Eos]);
        var grammar = new GrammarCompiler(vocab).Regex("\\{a+\\}");
        return new Request("r", [0], new SamplingParams { MaxTokens = 20 }, 20, 0, new HashSet<int> { Eos })
        {
            Grammar = new GrammarMatcher(grammar),
            ReasoningEndTokenId = End,
            ReasoningEnded = endedInPrompt,
        };
    }

    [Fact]
    public void TheGrammarStartsAfterTheEndOfReasoning()
    {
        var r = Make(endedInPrompt: false);
        Assert.False(r.GrammarActive);
        foreach (int t in new[] { 4, 0, 1, 3 })   // "<think>ab}" is reasoning: not checked against the grammar
            r.AppendOutputToken(t, 100);
        Assert.Equal(RequestStatus.Waiting, r.Status);
        r.AppendOutputToken(End, 100);
        Assert.True(r.GrammarActive);
        var mask = new int[1];
        r.Grammar!.FillNextTokenBitmask(mask);
        Assert.Equal(1 << 2, mask[0]);               // only "{" may start the answer
        foreach (int t in new[] { 2, 0, 0, 3 })
            r.AppendOutputToken(t, 100);
        Assert.True(r.Grammar.CanTerminate);
        r.AppendOutputToken(1, 100);                 // "b" breaks the grammar: the request stops
        Assert.Equal(RequestStatus.FinishedStopped, r.Status);
    }

    [Fact]
    public void APromptThatClosedTheReasoningIsConstrainedAtOnce()
    {
        var r = Make(endedInPrompt: true);
        Assert.True(r.GrammarActive);
        r.AppendOutputToken(0, 100);                 // "a" cannot start "{a+}"
        Assert.Equal(RequestStatus.FinishedStopped, r.Status);
    }
}
