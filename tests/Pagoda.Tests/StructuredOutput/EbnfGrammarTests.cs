using Pagoda.StructuredOutput;
using static Pagoda.Tests.StructuredOutput.GrammarKit;

namespace Pagoda.Tests.StructuredOutput;

/// <summary>GBNF and Lark-like grammars: rules, recursion, classes, repetition, and what is rejected.</summary>
public class EbnfGrammarTests
{
    private static void Check(string grammar, string[] accepted, string[] rejected)
    {
        var g = Compiler().Grammar(grammar);
        foreach (var a in accepted) Assert.True(Matches(g, a), $"should accept '{a}'");
        foreach (var r in rejected) Assert.False(Matches(g, r), $"should reject '{r}'");
    }

    [Fact]
    public void GbnfArithmeticWithRecursion() => Check("""
        # expressions with nesting
        root ::= expr
        expr ::= term (("+" | "-") term)*
        term ::= factor (("*" | "/") factor)*
        factor ::= number | "(" expr ")"
        number ::= [0-9]+
        """,
        ["1", "1+2*3", "(1+2)*3", "((((7))))", "10/(2-3)"],
        ["", "1+", "(1", "1)", "a"]);

    [Fact]
    public void GbnfClassesEscapesAndCounts() => Check("""
        root ::= "\"" [^"\\\n]* "\"" sep? hex{2,4} "." ? any
        sep  ::= [ \t]
        hex  ::= [0-9a-fA-F]
        any  ::= .
        """,
        ["\"hi\" 1f€", "\"\"\tABCD.x", "\"q\"00z"],
        ["\"a\"b\" 1fz", "\"q\"0z", "\"q\"00000z"]);

    [Fact]
    public void GbnfMultiLineAlternatives() => Check("""
        root ::= "a"
               | "b" rest
        rest ::= "c"
          | "d"
        """, ["a", "bc", "bd"], ["b", "ac"]);

    [Fact]
    public void LarkStyle() => Check("""
        start: pair ("," pair)*
        pair: KEY "=" VALUE
        KEY: /[a-z]+/
        VALUE: "0".."9"~1..3 [UNIT]
        UNIT: "kg" | 'g'
        // comment
        """,
        ["a=1", "ab=12kg,c=123g", "x=5"],
        ["a=", "A=1", "a=1234", "a=1,"]);

    [Fact]
    public void BalancedBracketsNeedTheStack() => Check("root ::= \"\" | \"(\" root \")\" root",
        ["", "()", "(())()", "((()))"], ["(", "())", ")("]);

    [Fact]
    public void RejectedGrammars()
    {
        string[] bad =
        [
            "root ::= root \"a\" | \"a\"",           // left recursion
            "root ::= a\na ::= b \"x\"\nb ::= a?",  // indirect left recursion
            "root ::= undefined",
            "start: a\n%ignore WS",
            "start: \"a\"i",
            "other ::= \"a\"",                       // no root
            "root ::= \"a",                          // unterminated
            "root ::= (\"a\"",
        ];
        foreach (var g in bad) Assert.Throws<GrammarException>(() => Compiler().Grammar(g));
    }
}
