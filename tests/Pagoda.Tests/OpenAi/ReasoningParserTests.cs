using Pagoda.OpenAi.Reasoning;

namespace Pagoda.Tests.OpenAi;

/// <summary>vLLM's qwen3 and deepseek_r1 reasoning parsers, whole and streamed in small pieces.</summary>
public class ReasoningParserTests
{
    public static TheoryData<string, string, string?, string?> Outputs => new()
    {
        { "qwen3", "<think>\nThe user wants a joke.\n</think>\n\nWhy did the chicken cross the road?", "\nThe user wants a joke.\n", "\n\nWhy did the chicken cross the road?" },
        { "qwen3", "No thinking here.", null, "No thinking here." },
        { "qwen3", "<think>only thoughts</think>", "only thoughts", null },
        { "deepseek_r1", "<think>Plan.</think>Answer.", "Plan.", "Answer." },
        { "deepseek_r1", "Plan without an opening tag.</think>Answer.", "Plan without an opening tag.", "Answer." },
        { "deepseek_r1", "Still thinking when the tokens ran out", "Still thinking when the tokens ran out", null },
    };

    [Theory]
    [MemberData(nameof(Outputs))]
    public void WholeOutputs(string parser, string output, string? reasoning, string? content)
    {
        Assert.Equal((reasoning, content), ReasoningParser.Create(parser).Extract(output));
    }

    [Theory]
    [MemberData(nameof(Outputs))]
    public void StreamedInPieces(string parser, string output, string? reasoning, string? content)
    {
        foreach (int piece in new[] { 1, 2, 5 })
        {
            var stream = ReasoningParser.Create(parser).Stream();
            string r = "", c = "";
            for (int i = 0; i < output.Length; i += piece)
            {
                var (dr, dc) = stream.Push(output.Substring(i, Math.Min(piece, output.Length - i)), i + piece >= output.Length);
                Assert.False(dr.Contains("<think>") || dr.Contains("</think>") || dc.Contains("</think>"), $"a tag leaked: '{dr}' '{dc}'");
                (r, c) = (r + dr, c + dc);
            }
            Assert.Equal(reasoning ?? "", r);
            Assert.Equal(content ?? "", c);
        }
    }

    [Fact]
    public void UnknownParserNamesTheSupportedOnes() =>
        Assert.Contains("qwen3, deepseek_r1", Assert.Throws<ArgumentException>(() => ReasoningParser.Create("granite")).Message);
}
