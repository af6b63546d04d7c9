using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Server.Tests;

/// <summary>Every error class comes back in OpenAI's shape with the right status.</summary>
[Collection(ServerCollection.Name)]
public class ErrorTests(ServerFixture f)
{
    private async Task<JsonNode> Expect(int status, string path, string body)
    {
        using var response = await f.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(status == (int)response.StatusCode, $"{path} {body}: {(int)response.StatusCode} {text}");
        var error = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(["error"], error.Select(p => p.Key));
        var e = error["error"]!.AsObject();
        Assert.Equal(["message", "type", "param", "code"], e.Select(p => p.Key));
        Assert.Equal(status, e["code"]!.GetValue<int>());
        return e;
    }

    [Theory]
    [InlineData("/v1/chat/completions", "{\"messages\": [")]
    [InlineData("/v1/completions", "not json")]
    [InlineData("/v1/embeddings", "[1, 2]")]
    [InlineData("/tokenize", "")]
    public async Task MalformedJsonIs400(string path, string body)
    {
        var e = await Expect(400, path, body);
        Assert.Equal("BadRequestError", e["type"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}""", "temperature")]
    [InlineData("/v1/chat/completions", """{"messages": "hello"}""", "messages")]
    [InlineData("/v1/completions", """{"prompt": "x", "max_tokens": 1.5}""", "max_tokens")]
    [InlineData("/v1/completions", """{"prompt": {"text": "x"}}""", "prompt")]
    [InlineData("/v1/completions", """{"prompt": "x", "suffix": "y"}""", "suffix")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 50, "logprobs": true}""", "top_logprobs")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "structural_tag"}}""", "response_format")]
    [InlineData("/v1/embeddings", """{"input": "x", "encoding_format": "int8"}""", "encoding_format")]
    [InlineData("/v1/embeddings", """{"input": "x", "dimensions": 12}""", "dimensions")]
    [InlineData("/v1/chat/completions", """{"model": 7, "messages": [{"role": "user", "content": "x"}]}""", "model")]
    public async Task WrongTypesAndUnsupportedFieldsAre400WithTheParam(string path, string body, string param)
    {
        var e = await Expect(400, path, body);
        Assert.Equal(param, e["param"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"prompt": "x", "temperature": -1}""", "temperature")]
    [InlineData("""{"prompt": "x", "top_p": 1.5}""", "top_p")]
    [InlineData("""{"prompt": "x", "n": 0}""", "n")]
    [InlineData("""{"prompt": "x", "logit_bias": {"99999": 1}}""", "99999")]
    [InlineData("""{"prompt": [99999]}""", "99999")]
    public async Task OutOfRangeValuesAre400(string body, string mentioned)
    {
        var e = await Expect(400, "/v1/completions", body);
        Assert.Contains(mentioned, e["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task UnknownModelIs404()
    {
        var e = await Expect(404, "/v1/chat/completions", """{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}""");
        Assert.Equal("NotFoundError", e["type"]!.GetValue<string>());
        Assert.Contains("gpt-4", e["message"]!.GetValue<string>());
        await Expect(404, "/v1/embeddings", """{"model": "nope", "input": "x"}""");
    }

    [Fact]
    public async Task PromptLongerThanMaxModelLenIs400WithBothNumbers()
    {
        string ids = string.Join(",", Enumerable.Repeat(5, 3000));
        var e = await Expect(400, "/v1/completions", $$"""{"prompt": [{{ids}}], "stream": true}""");
        string message = e["message"]!.GetValue<string>();
        Assert.Contains("3000", message);
        Assert.Contains("2048", message);
        var chat = await Expect(400, "/v1/chat/completions",
            $$"""{"messages": [{"role": "user", "content": "{{string.Concat(Enumerable.Repeat("joke ", 2100))}}"}], "stream": true}""");
        Assert.Contains("2048", chat["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task UnknownRouteIs404InTheSameShape()
    {
        using var response = await f.Http.GetAsync("/v1/nothing-here");
        Assert.Equal(404, (int)response.StatusCode);
        Assert.Equal("NotFoundError", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["type"]!.GetValue<string>());
    }
}
