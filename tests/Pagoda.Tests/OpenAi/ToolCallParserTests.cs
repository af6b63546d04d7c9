using System.Text.Json.Nodes;
using Pagoda.OpenAi.Tools;

namespace Pagoda.Tests.OpenAi;

/// <summary>
/// vLLM's tool parsers on outputs as models write them: the content, each call's name and arguments (in Python's
/// json.dumps layout, as vLLM returns them), malformed calls left as text, and streaming in small pieces that
/// concatenate to the same content and arguments.
/// </summary>
public class ToolCallParserTests
{
    public static TheoryData<string, string, string?, string[]> Outputs => new()
    {
        { "hermes", "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
            "Let me check.\n", ["get_weather {\"city\": \"Paris\", \"days\": 3}"] },
        { "hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"arguments\": {\"x\": [1, 2]}, \"name\": \"b\"}\n</tool_call>",
            null, ["a {}", "b {\"x\": [1, 2]}"] },
        { "hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"é\\n\"}}", null, ["a {\"q\": \"é\\n\"}"] },   // unclosed last call
        { "hermes", "No tools needed.", "No tools needed.", [] },
        { "hermes", "<tool_call>{not json}</tool_call>", "<tool_call>{not json}</tool_call>", [] },
        { "llama3_json", "{\"name\": \"get_time\", \"parameters\": {\"tz\": \"UTC\"}}", null, ["get_time {\"tz\": \"UTC\"}"] },
        { "llama3_json", "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"arguments\": {\"k\": true}}", null, ["a {}", "b {\"k\": true}"] },
        { "llama3_json", "The time is noon.", "The time is noon.", [] },
        { "mistral", "Sure.[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2.5}}]", "Sure.", ["add {\"a\": 1, \"b\": 2.5}"] },
        { "mistral", "[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 1}}, {\"name\": \"neg\", \"arguments\": {\"a\": -1}}]", null, ["add {\"a\": 1}", "neg {\"a\": -1}"] },
        { "pythonic", "[get_weather(city='Paris', days=3, metric=True), get_time()]", null, ["get_weather {\"city\": \"Paris\", \"days\": 3, \"metric\": true}", "get_time {}"] },
        { "pythonic", "[f(x=None, y=[1, 'a'], z={'k': 2.5})]", null, ["f {\"x\": null, \"y\": [1, \"a\"], \"z\": {\"k\": 2.5}}"] },
        { "pythonic", "I can't call anything.", "I can't call anything.", [] },
    };

    [Theory]
    [MemberData(nameof(Outputs))]
    public void WholeOutputs(string parser, string output, string? content, string[] calls)
    {
        var parsed = ToolCallParser.Create(parser).Parse(output);
        Assert.Equal(content, parsed.Content);
        Assert.Equal(calls, parsed.Calls.Select(c => $"{c.Name} {c.Arguments}"));
        Assert.All(parsed.Calls, c => Assert.Matches(parser == "mistral" ? "^[A-Za-z0-9]{9}$" : "^chatcmpl-tool-[0-9a-f]{32}$", c.Id));
    }

    [Theory]
    [MemberData(nameof(Outputs))]
    public void StreamedInPiecesGivesTheSameContentAndCalls(string parser, string output, string? content, string[] calls)
    {
        foreach (int piece in new[] { 1, 3, 7 })
        {
            var stream = ToolCallParser.Create(parser).Stream();
            var text = new System.Text.StringBuilder();
            var names = new List<string>();
            var args = new List<System.Text.StringBuilder>();
            var ids = new List<string>();
            for (int i = 0; i < output.Length; i += piece)
            {
                bool final = i + piece >= output.Length;
                var (c, deltas) = stream.Push(output.Substring(i, Math.Min(piece, output.Length - i)), final);
                text.Append(c);
                foreach (var d in deltas)
                {
                    if (d.Id != null)
                    {
                        Assert.Equal(names.Count, d.Index);   // a call's first piece names it, in order
                        ids.Add(d.Id);
                        names.Add(d.Name!);
                        args.Add(new());
                    }
                    else
                        Assert.Null(d.Name);
                    args[d.Index].Append(d.Arguments);
                }
            }
            if (calls.Length == 0)
            {
                // Malformed or no calls: all of it went out as text.
                Assert.Equal(content, text.ToString());
                Assert.Empty(names);
                continue;
            }
            Assert.Equal(content ?? "", text.ToString());
            Assert.Equal(calls.Length, names.Count);
            Assert.True(stream.CalledTools);
            for (int i = 0; i < calls.Length; i++)
            {
                string expected = calls[i][(calls[i].IndexOf(' ') + 1)..];
                Assert.Equal(calls[i][..calls[i].IndexOf(' ')], names[i]);
                Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(args[i].ToString())),
                    $"{parser} piece {piece} call {i}: {args[i]} vs {expected}");
            }
        }
    }

    [Fact]
    public void ContentThatMayBeginACallIsHeldBackUntilItIsNot()
    {
        var stream = ToolCallParser.Create("hermes").Stream();
        Assert.Equal("Hi ", stream.Push("Hi <tool", false).Content);
        Assert.Equal("<tool are fun", stream.Push(" are fun", false).Content);
        Assert.Equal("", stream.Push("<tool_c", false).Content);
        Assert.Equal("<tool_c", stream.Push("", true).Content);
    }

    [Fact]
    public void UnknownParserNamesTheSupportedOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => ToolCallParser.Create("granite"));
        Assert.Contains("hermes, llama3_json, mistral, pythonic", e.Message);
    }
}
