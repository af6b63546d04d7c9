using System.Text.Json.Nodes;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Engine;

/// <summary>
/// Structured outputs through the whole engine (fortune-chat on the CPU): every output sampled at temperature 1
/// under a JSON schema that finishes parses and validates; choice and regex outputs match; greedy obeys too; a
/// bad schema is an ArgumentException before anything runs.
/// </summary>
public class StructuredOutputTests
{
    private const string Schema = """
        {"type": "object", "properties": {"topic": {"type": "string", "enum": ["cats", "work", "love"]},
         "stars": {"type": "integer", "minimum": 1, "maximum": 5}, "joke": {"type": "string", "maxLength": 30}},
         "required": ["topic", "stars", "joke"], "additionalProperties": false}
        """;

    private static LLM Fortune() => new(new EngineArgs { Model = TestPaths.Model("fortune-chat"), NumKvBlocks = 256, MaxModelLen = 512 });

    private static PromptInput Chat(LLM llm, string text) => new()
    {
        Text = llm.Engine.ChatTemplate!.Render(new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }), true, null, null),
        AddSpecialTokens = false,
    };

    [Fact]
    public void SampledOutputsUnderASchemaValidate()
    {
        using var llm = Fortune();
        var schema = Json.Schema.JsonSchema.FromText(Schema);
        var prompts = Enumerable.Range(0, 12).Select(i => Chat(llm, $"Rate a joke about cats #{i} as JSON")).ToList();
        var p = new SamplingParams { Temperature = 1.0, MaxTokens = 96, Seed = 7, StructuredOutputs = new() { Json = Schema } };
        var outputs = llm.Generate(prompts, prompts.Select((_, i) => p with { Seed = 7 + i }).ToList());
        int finished = 0;
        foreach (var o in outputs.Select(o => o.Outputs[0]))
        {
            if (o.FinishReason != "stop")
            {
                Assert.Equal("length", o.FinishReason);
                continue;
            }
            finished++;
            var node = JsonNode.Parse(o.Text);
            Assert.True(schema.Evaluate(node).IsValid, $"invalid: {o.Text}");
        }
        Assert.True(finished >= 6, $"only {finished} of 12 finished within 96 tokens");
    }

    [Fact]
    public void ChoiceRegexAndGreedyObey()
    {
        using var llm = Fortune();
        var prompt = Chat(llm, "Tell me a joke");
        var choice = llm.Generate([prompt], new SamplingParams { Temperature = 0, MaxTokens = 16, StructuredOutputs = new() { Choice = ["yes", "no", "maybe later"] } });
        Assert.Contains(choice[0].Outputs[0].Text, new[] { "yes", "no", "maybe later" });
        Assert.Equal("stop", choice[0].Outputs[0].FinishReason);

        var regex = llm.Generate([prompt], new SamplingParams { Temperature = 1, Seed = 3, N = 4, MaxTokens = 24, StructuredOutputs = new() { Regex = "[A-Z][a-z]{2,8}( [a-z]{1,8}){0,3}\\." } });
        Assert.All(regex[0].Outputs, o => Assert.Matches("^[A-Z][a-z]{2,8}( [a-z]{1,8}){0,3}\\.$", o.Text));

        var json = llm.Generate([prompt], new SamplingParams { Temperature = 0, MaxTokens = 64, StructuredOutputs = new() { JsonObject = true } });
        if (json[0].Outputs[0].FinishReason == "stop")
            Assert.IsType<JsonObject>(JsonNode.Parse(json[0].Outputs[0].Text));
        else
            Assert.StartsWith("{", json[0].Outputs[0].Text);
    }

    [Theory]
    [InlineData("{\"type\": \"object\", \"not\": {}}", "not")]
    [InlineData("{\"type\": \"strnig\"}", "strnig")]
    public void ABadSchemaIsRejectedBeforeAnythingRuns(string schema, string mentioned)
    {
        using var llm = Fortune();
        var e = Assert.Throws<ArgumentException>(() => llm.Generate([Chat(llm, "x")], new SamplingParams { StructuredOutputs = new() { Json = schema } }));
        Assert.Contains(mentioned, e.Message);
        Assert.False(llm.Engine.HasUnfinishedRequests);
    }
}
