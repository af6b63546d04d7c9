using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Pagoda.Server.Tests;

/// <summary>
/// vLLM's render routes: the body is vLLM's GenerateRequest, the token ids are exactly those generation runs on (the
/// request log of a real generation, usage, transformers' goldens), and a render refuses what generation refuses.
/// </summary>
[Collection(ServerCollection.Name)]
public class RenderTests(ServerFixture f)
{
    private static readonly string[] GenerateRequestFields =
        ["request_id", "token_ids", "features", "sampling_params", "model", "stream", "stream_options", "cache_salt", "priority", "kv_transfer_params"];

    private static int[] Ids(JsonNode? array) => array!.AsArray().Select(i => i!.GetValue<int>()).ToArray();

    private static JsonObject Chat(JsonArray messages) => new() { ["model"] = "fortune", ["messages"] = messages };

    [Fact]
    public async Task ChatRenderIsVllmsGenerateRequestWithTransformersPromptIds()
    {
        foreach (var golden in GoldenChat.All)
        {
            var (status, body) = await f.PostJson("/v1/chat/completions/render", Chat(golden.Messages.DeepClone().AsArray()));
            Assert.Equal(200, status);
            var o = body!.AsObject();
            Assert.Equal(GenerateRequestFields, o.Select(kv => kv.Key));
            Assert.Equal(golden.PromptIds, Ids(o["token_ids"]));
            Assert.Matches("^chatcmpl-[0-9a-f]{32}$", o["request_id"]!.GetValue<string>());
            Assert.Null(o["features"]);
            Assert.Equal("fortune", o["model"]!.GetValue<string>());
            Assert.False(o["stream"]!.GetValue<bool>());
            Assert.Null(o["stream_options"]);
            Assert.Null(o["cache_salt"]);
            Assert.Equal(0, o["priority"]!.GetValue<int>());
            Assert.Null(o["kv_transfer_params"]);
            // vLLM's SamplingParams with omit_defaults, as its chat route builds it with no sampling fields (the fixture
            // runs --generation-config vllm): max_tokens is what the context leaves, output_kind FINAL_ONLY (2).
            var expected = new JsonObject
            {
                ["stop"] = new JsonArray(), ["stop_token_ids"] = new JsonArray(),
                ["max_tokens"] = f.Engine.Engine.MaxModelLen - golden.PromptIds.Length, ["output_kind"] = 2, ["skip_clone"] = true,
                ["bad_words"] = new JsonArray(), ["skip_reading_prefix_cache"] = false,
            };
            Assert.True(JsonNode.DeepEquals(expected, o["sampling_params"]), o["sampling_params"]!.ToJsonString());
        }
    }

    [Fact]
    public async Task SamplingFieldsComeBackInVllmsNamesAndStreamOptionsWhenStreaming()
    {
        using var response = await f.Http.PostAsync("/v1/chat/completions/render", new StringContent(new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" }),
            ["temperature"] = 0.5, ["top_p"] = 0.9, ["top_k"] = 5, ["frequency_penalty"] = 1.1, ["seed"] = 7, ["max_tokens"] = 10,
            ["stop"] = "ab\u00e9", ["logprobs"] = true, ["top_logprobs"] = 2, ["logit_bias"] = new JsonObject { ["11"] = 500 },
            ["stream"] = true, ["stream_options"] = new JsonObject { ["continuous_usage_stats"] = true },
        }.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        var o = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Null(o["model"]);
        Assert.True(o["stream"]!.GetValue<bool>());
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["include_usage"] = true, ["continuous_usage_stats"] = true }, o["stream_options"]));
        var expected = new JsonObject
        {
            ["frequency_penalty"] = 1.1, ["temperature"] = 0.5, ["top_p"] = 0.9, ["top_k"] = 5, ["seed"] = 7,
            ["stop"] = new JsonArray("ab\u00e9"), ["stop_token_ids"] = new JsonArray(), ["max_tokens"] = 10, ["logprobs"] = 2,
            ["output_kind"] = 1, ["skip_clone"] = true, ["output_text_buffer_length"] = 2,
            ["logit_bias"] = new JsonObject { ["11"] = 100.0 }, ["bad_words"] = new JsonArray(), ["skip_reading_prefix_cache"] = false,
        };
        Assert.True(JsonNode.DeepEquals(expected, o["sampling_params"]), o["sampling_params"]!.ToJsonString());

        // Greedy: vLLM resets top_p, top_k and min_p; a structured output is written as vLLM's dataclass.
        var (_, greedy) = await f.PostJson("/v1/completions/render", new JsonObject
        {
            ["prompt"] = "Hi", ["temperature"] = 0, ["top_p"] = 0.5, ["min_p"] = 0.2,
            ["structured_outputs"] = new JsonObject { ["choice"] = new JsonArray("yes", "no") },
        });
        var sp = greedy![0]!["sampling_params"]!;
        Assert.Equal(0, sp["temperature"]!.GetValue<double>());
        Assert.Null(sp["top_p"]);
        Assert.Null(sp["min_p"]);
        Assert.Null(sp["max_tokens"]); // 16, vLLM's default, is left out
        Assert.True(JsonNode.DeepEquals(new JsonArray("yes", "no"), sp["structured_outputs"]!["choice"]));
        Assert.Null(sp["structured_outputs"]!["json"]);
    }

    [Fact]
    public async Task CompletionsRenderGivesOneGenerateRequestPerPrompt()
    {
        var (status, body) = await f.PostJson("/v1/completions/render", new JsonObject
        {
            ["prompt"] = new JsonArray("Hello world", "Goodbye world"), ["max_tokens"] = 5, ["echo"] = true, ["logprobs"] = 1,
        });
        Assert.Equal(200, status);
        var list = body!.AsArray();
        Assert.Equal(2, list.Count);
        foreach (var item in list)
        {
            Assert.Equal(GenerateRequestFields, item!.AsObject().Select(kv => kv.Key));
            Assert.Matches("^cmpl-[0-9a-f]{32}$", item["request_id"]!.GetValue<string>());
            Assert.Equal(5, item["sampling_params"]!["max_tokens"]!.GetValue<int>());
            // echo with logprobs asks for prompt logprobs, which vLLM reads the prefix cache around.
            Assert.Equal(1, item["sampling_params"]!["prompt_logprobs"]!.GetValue<int>());
            Assert.True(item["sampling_params"]!["skip_reading_prefix_cache"]!.GetValue<bool>());
        }
        Assert.NotEqual(list[0]!["request_id"]!.GetValue<string>(), list[1]!["request_id"]!.GetValue<string>());
        Assert.Equal(f.Engine.Engine.Tokenizer.Encode("Goodbye world", true).ToArray(), Ids(list[1]!["token_ids"]));

        var (_, ids) = await f.PostJson("/v1/completions/render", new JsonObject { ["prompt"] = new JsonArray(7397, 11, 478) });
        Assert.Equal([7397, 11, 478], Ids(ids![0]!["token_ids"]));
    }

    /// <summary>
    /// Each body is rendered, then generated on a server that logs the prompt token ids it admits: the two agree, and
    /// usage counts them, for chat (tools, add_special_tokens, continue_final_message) and completions (text with and
    /// without special tokens, token ids, several prompts).
    /// </summary>
    [Fact]
    public async Task RenderTokensAreTheTokensGenerationRuns()
    {
        var log = new StringWriter();
        var writer = TextWriter.Synchronized(log);
        var server = PagodaServer.Create(new ServerOptions { Port = 0, EnableLogRequests = true }, f.Engine, writer);
        await server.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = server.Address };
            var user = new JsonObject { ["role"] = "user", ["content"] = "Tell me a joke." };
            var tool = new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "joke", ["parameters"] = new JsonObject { ["type"] = "object" } },
            };
            var chats = new[]
            {
                new JsonObject { ["messages"] = new JsonArray(user.DeepClone()) },
                new JsonObject { ["messages"] = new JsonArray(user.DeepClone()), ["add_special_tokens"] = true },
                new JsonObject { ["messages"] = new JsonArray(user.DeepClone()), ["tools"] = new JsonArray(tool.DeepClone()), ["tool_choice"] = "none" },
                new JsonObject
                {
                    ["messages"] = new JsonArray(user.DeepClone(), new JsonObject { ["role"] = "assistant", ["content"] = "Why did" }),
                    ["continue_final_message"] = true, ["add_generation_prompt"] = false,
                },
            };
            int n = 0;
            foreach (var chat in chats)
            {
                string rid = $"render-chat-{n++}";
                var rendered = await Post(http, "/v1/chat/completions/render", chat, rid);
                var generated = await Post(http, "/v1/chat/completions", With(chat, 1), rid);
                int[] ids = Ids(rendered["token_ids"]);
                Assert.Equal(ids, LoggedPromptIds(log, writer, $"chatcmpl-{rid}"));
                Assert.Equal(ids.Length, generated["usage"]!["prompt_tokens"]!.GetValue<int>());
            }

            var completions = new[]
            {
                new JsonObject { ["prompt"] = "The capital of France is" },
                new JsonObject { ["prompt"] = "The capital of France is", ["add_special_tokens"] = false },
                new JsonObject { ["prompt"] = new JsonArray(7397, 11, 478) },
                new JsonObject { ["prompt"] = new JsonArray("A fortune", "<|im_start|>user") },
            };
            foreach (var completion in completions)
            {
                string rid = $"render-cmpl-{n++}";
                var rendered = (await Post(http, "/v1/completions/render", completion, rid)).AsArray();
                var generated = await Post(http, "/v1/completions", With(completion, 1), rid);
                int total = 0;
                for (int i = 0; i < rendered.Count; i++)
                {
                    int[] ids = Ids(rendered[i]!["token_ids"]);
                    Assert.Equal(ids, LoggedPromptIds(log, writer, $"cmpl-{rid}-{i}"));
                    total += ids.Length;
                }
                Assert.Equal(total, generated["usage"]!["prompt_tokens"]!.GetValue<int>());
            }
        }
        finally
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
    }

    private static JsonObject With(JsonObject body, int maxTokens)
    {
        var copy = body.DeepClone().AsObject();
        copy["max_tokens"] = maxTokens;
        return copy;
    }

    private static async Task<JsonNode> Post(HttpClient http, string path, JsonObject body, string requestId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Request-Id", requestId);
        using var response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static int[] LoggedPromptIds(StringWriter log, TextWriter writer, string id)
    {
        string text;
        lock (writer)
            text = log.ToString();
        var m = Regex.Match(text, $@"Received request {Regex.Escape(id)}: .*prompt_token_ids: \[([0-9, ]*)\]");
        Assert.True(m.Success, $"no request log for {id}");
        return m.Groups[1].Value.Split(", ").Select(int.Parse).ToArray();
    }

    [Fact]
    public async Task RenderRefusesWhatGenerationRefusesInOpenAisShape()
    {
        var hi = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hi" });
        var cases = new (string Path, JsonObject Body, int Status, string? Param)[]
        {
            ("/v1/chat/completions/render", new JsonObject { ["model"] = "nope", ["messages"] = hi.DeepClone() }, 404, "model"),
            ("/v1/completions/render", new JsonObject { ["model"] = "nope", ["prompt"] = "Hi" }, 404, "model"),
            ("/v1/chat/completions/render", new JsonObject(), 400, null),
            ("/v1/completions/render", new JsonObject { ["prompt"] = new JsonArray() }, 400, "prompt"),
            ("/v1/chat/completions/render", new JsonObject { ["messages"] = hi.DeepClone(), ["max_tokens"] = 5000 }, 400, "max_tokens"),
            ("/v1/completions/render", new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 5000 }, 400, "max_tokens"),
            ("/v1/chat/completions/render", new JsonObject { ["messages"] = hi.DeepClone(), ["use_beam_search"] = true }, 400, "use_beam_search"),
            ("/v1/completions/render", new JsonObject { ["prompt"] = "Hi", ["logit_bias"] = new JsonObject { ["99999999"] = 1 } }, 400, null),
            ("/v1/chat/completions/render", new JsonObject { ["messages"] = hi.DeepClone(), ["tool_choice"] = "auto" }, 400, "tool_choice"),
            ("/v1/completions/render", new JsonObject { ["prompt"] = "Hi", ["suffix"] = "x" }, 400, "suffix"),
        };
        foreach (var (path, body, status, param) in cases)
        {
            var (got, error) = await f.PostJson(path, body);
            Assert.True(status == got, $"{path} {body.ToJsonString()}: {got} {error?.ToJsonString()}");
            var e = error!["error"]!;
            Assert.Equal(status == 404 ? "NotFoundError" : "BadRequestError", e["type"]!.GetValue<string>());
            Assert.Equal(status, e["code"]!.GetValue<int>());
            Assert.False(string.IsNullOrEmpty(e["message"]!.GetValue<string>()));
            if (param != null)
                Assert.Equal(param, e["param"]?.GetValue<string>());
            // The generation route refuses the same body with the same status.
            string generate = path.Replace("/render", "", StringComparison.Ordinal);
            Assert.Equal(status, (await f.PostJson(generate, body)).Status);
        }
        Assert.StartsWith("This model's maximum context length is 2048 tokens. However, you requested ",
            (await f.PostJson("/v1/completions/render", new JsonObject { ["prompt"] = "Hi", ["max_tokens"] = 5000 })).Body!["error"]!["message"]!.GetValue<string>());
        using var malformed = await f.Http.PostAsync("/v1/chat/completions/render", new StringContent("{\"messages\": ", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        // A GET is refused as on the generation routes.
        using var get = await f.Http.GetAsync("/v1/completions/render");
        using var getGenerate = await f.Http.GetAsync("/v1/completions");
        Assert.Equal(getGenerate.StatusCode, get.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, get.StatusCode);
    }
}
