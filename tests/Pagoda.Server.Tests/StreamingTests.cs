using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Server.Tests;

/// <summary>Server-Sent Events byte for byte, and what a disconnect does to the engine.</summary>
[Collection(ServerCollection.Name)]
public class StreamingTests(ServerFixture f)
{
    private static readonly System.Text.Json.JsonSerializerOptions Relaxed =
        new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    [Fact]
    public async Task ChatStreamIsFramedExactlyAsOpenAi()
    {
        var g = GoldenChat.All[4];
        var request = new JsonObject
        {
            ["model"] = "fortune", ["messages"] = g.Messages.DeepClone(), ["temperature"] = 0, ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        using var response = await f.Http.PostAsync("/v1/chat/completions", Json(request));
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        string raw = await response.Content.ReadAsStringAsync();

        var frames = raw.Split("\n\n");
        Assert.Equal("", frames[^1]);          // the body ends with a blank line
        Assert.Equal("data: [DONE]", frames[^2]);
        var chunks = frames[..^2].Select(fr =>
        {
            Assert.StartsWith("data: {", fr);
            Assert.DoesNotContain("\n", fr);
            return JsonNode.Parse(fr["data: ".Length..])!;
        }).ToList();
        string id = chunks[0]["id"]!.GetValue<string>();
        long created = chunks[0]["created"]!.GetValue<long>();
        Assert.StartsWith("chatcmpl-", id);

        // Rebuild the exact bytes we expect from the content deltas and compare the whole body.
        string Head(string choices, string usage) =>
            $$"""data: {"id":"{{id}}","object":"chat.completion.chunk","created":{{created}},"model":"fortune","system_fingerprint":"pagoda","choices":[{{choices}}],"usage":{{usage}}}""" + "\n\n";
        string Choice(string delta, string? finish) =>
            $$"""{"index":0,"delta":{{delta}},"logprobs":null,"finish_reason":{{(finish is null ? "null" : $"\"{finish}\"")}},"stop_reason":null}""";
        var expected = new StringBuilder(Head(Choice("""{"role":"assistant","content":""}""", null), "null"));
        var deltas = chunks.Skip(1).Take(chunks.Count - 3).Select(c => c["choices"]![0]!["delta"]!["content"]!.GetValue<string>()).ToList();
        foreach (string d in deltas)
            expected.Append(Head(Choice(new JsonObject { ["content"] = d }.ToJsonString(Relaxed), null), "null"));
        expected.Append(Head(Choice("{}", "stop"), "null"));
        expected.Append(Head("", $$"""{"prompt_tokens":{{g.PromptIds.Length}},"total_tokens":{{g.PromptIds.Length + g.OutputIds.Length}},"completion_tokens":{{g.OutputIds.Length}}}"""));
        expected.Append("data: [DONE]\n\n");
        Assert.Equal(expected.ToString(), raw);
        Assert.Equal(g.Text, string.Concat(deltas));
        Assert.True(deltas.Count > 5);
    }

    [Fact]
    public async Task CompletionStreamEndsWithFinishReasonUsageAndDone()
    {
        var request = new JsonObject
        {
            ["prompt"] = "Hello", ["max_tokens"] = 5, ["ignore_eos"] = true, ["stream"] = true, ["n"] = 2, ["seed"] = 3,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        using var response = await f.Http.PostAsync("/v1/completions", Json(request));
        string raw = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n\ndata: [DONE]\n\n", raw);
        var chunks = raw.Split("\n\n")[..^2].Select(fr => JsonNode.Parse(fr["data: ".Length..])!).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c["object"]!.GetValue<string>()));
        Assert.Equal(10, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Empty(chunks[^1]["choices"]!.AsArray());
        var finishes = chunks.SelectMany(c => c["choices"]!.AsArray()).Where(c => c!["finish_reason"] is not null).ToList();
        Assert.Equal([0, 1], finishes.Select(c => c!["index"]!.GetValue<int>()).Order());
        Assert.All(finishes, c => Assert.Equal("length", c!["finish_reason"]!.GetValue<string>()));
    }

    [Fact]
    public async Task DisconnectAbortsTheRequestAndFreesItsBlocks()
    {
        var request = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me a very long story." }),
            ["max_tokens"] = 1900, ["ignore_eos"] = true, ["stream"] = true,
        };
        using (var message = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(request) })
        using (var response = await f.Http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            for (int frames = 0; frames < 5;)
            {
                if ((await reader.ReadLineAsync())!.StartsWith("data: "))
                    frames++;
            }
            Assert.True(f.Engine.Stats.KvCacheUsage > 0);
            Assert.Equal(1, f.Engine.Stats.NumRunning);
        } // disposing the response closes the connection mid-stream
        Assert.True(await f.WaitIdle(TimeSpan.FromSeconds(5)), $"still busy: {f.Engine.Stats}");
        Assert.Contains("pagoda:kv_cache_usage_perc{model_name=\"fortune\"} 0.0\n", await f.Http.GetStringAsync("/metrics"));
    }
}
