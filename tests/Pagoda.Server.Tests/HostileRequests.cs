using System.Text;
using System.Text.Json.Nodes;

namespace Pagoda.Server.Tests;

/// <summary>One hostile request: raw bytes to a route, with optional extra headers.</summary>
public sealed record HostileRequest(string Name, string Method, string Path, byte[]? Body, string ContentType = "application/json",
    IReadOnlyList<(string Name, string Value)>? Headers = null, bool TransportLevel = false)
{
    public override string ToString() => $"{Method} {Path} [{Name}]";
}

/// <summary>
/// The table of malformed and hostile requests the server must answer with an OpenAI-style 4xx. Every value
/// here is invalid by construction (wrong type, out of range, beyond a limit), so a 2xx is as wrong as a 5xx.
/// </summary>
public static class HostileRequests
{
    public static readonly string[] PostRoutes =
    [
        "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize", "/invocations",
        "/v1/completions/render", "/v1/chat/completions/render",
    ];

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static HostileRequest Post(string name, string path, string body) => new(name, "POST", path, Utf8(body));

    /// <summary>Bodies that are not a JSON object at all (sent to every POST route).</summary>
    private static IEnumerable<(string Name, byte[] Body)> NotJsonObjects()
    {
        yield return ("empty", []);
        yield return ("open brace", Utf8("{"));
        yield return ("close brace", Utf8("}"));
        yield return ("word", Utf8("hello"));
        yield return ("array", Utf8("[1, 2]"));
        yield return ("number", Utf8("42"));
        yield return ("string", Utf8("\"prompt\""));
        yield return ("null", Utf8("null"));
        yield return ("missing value", Utf8("{\"prompt\": }"));
        yield return ("trailing comma", Utf8("{\"prompt\": \"x\",}"));
        yield return ("NaN literal", Utf8("{\"prompt\": \"x\", \"temperature\": NaN}"));
        yield return ("Infinity literal", Utf8("{\"prompt\": \"x\", \"top_p\": Infinity}"));
        yield return ("comment", Utf8("{/* c */ \"prompt\": \"x\"}"));
        yield return ("single quotes", Utf8("{'prompt': 'x'}"));
        yield return ("two objects", Utf8("{} {}"));
        yield return ("deep array nesting", Utf8(new string('[', 5000) + new string(']', 5000)));
        yield return ("deep object nesting", Utf8(string.Concat(Enumerable.Repeat("{\"a\":", 2000)) + "1" + new string('}', 2000)));
        yield return ("invalid UTF-8", [.. Utf8("{\"prompt\": \""), 0xC3, 0x28, 0xFF, 0xFE, .. Utf8("\"}")]);
        yield return ("lone surrogate escape", Utf8("{\"prompt\": \"\\uD800\", \"messages\": \"\\uDFFF\", \"input\": 5, \"tokens\": \"\\uD800\"}"));
        yield return ("NUL bytes", [0, 0, 0, 0]);
        yield return ("unterminated string", Utf8("{\"prompt\": \"abc"));
        yield return ("duplicate keys, wrong type last", Utf8("{\"prompt\": \"x\", \"input\": \"x\", \"messages\": 1, \"tokens\": 1, \"prompt\": 1, \"input\": 1}"));
    }

    /// <summary>Values invalid for a numeric sampling field, whatever the field.</summary>
    private static readonly string[] NotANumber = ["\"1\"", "true", "[]", "{}", "\"NaN\""];

    /// <summary>(field, invalid value) pairs shared by completions and chat.</summary>
    private static IEnumerable<(string Field, string Value)> SamplingFields()
    {
        foreach (string field in new[] { "temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty" })
        {
            foreach (string v in NotANumber)
                yield return (field, v);
            yield return (field, "-1e308");
            yield return (field, "1e400");
        }
        foreach (string field in new[] { "n", "max_tokens", "min_tokens", "top_k", "seed", "prompt_logprobs" })
        {
            yield return (field, "\"3\"");
            yield return (field, "1.5");
            yield return (field, "1e30");
            yield return (field, "-99999999999999999999999");
        }
        yield return ("n", "0");
        yield return ("n", "-1");
        yield return ("n", "100000");
        yield return ("n", "2147483647");
        yield return ("max_tokens", "0");
        yield return ("max_tokens", "-5");
        yield return ("max_tokens", "2147483648");
        yield return ("min_tokens", "-1");
        yield return ("top_k", "-2");
        yield return ("prompt_logprobs", "-1");
        yield return ("prompt_logprobs", "100000");
        yield return ("temperature", "-0.5");
        yield return ("top_p", "0");
        yield return ("top_p", "1.0001");
        yield return ("min_p", "2");
        yield return ("repetition_penalty", "0");
        yield return ("presence_penalty", "3");
        yield return ("stop", "5");
        yield return ("stop", "[1, 2]");
        yield return ("stop", "[\"\"]");
        yield return ("stop", "{\"a\": 1}");
        yield return ("stop", "[null]");
        yield return ("stop", "[" + string.Join(",", Enumerable.Range(0, 100_000).Select(i => $"\"s{i}\"")) + "]");
        yield return ("stop_token_ids", "\"x\"");
        yield return ("stop_token_ids", "[1.5]");
        yield return ("stop_token_ids", "[\"1\"]");
        yield return ("logit_bias", "[1]");
        yield return ("logit_bias", "{\"abc\": 1}");
        yield return ("logit_bias", "{\"-1\": 1}");
        yield return ("logit_bias", "{\"1\": \"x\"}");
        yield return ("logit_bias", "{\"99999999\": 1}");
        yield return ("allowed_token_ids", "[]");
        yield return ("allowed_token_ids", "[-1]");
        yield return ("allowed_token_ids", "[100000000]");
        yield return ("bad_words", "[1]");
        yield return ("ignore_eos", "\"yes\"");
        yield return ("stream", "1");
        yield return ("skip_special_tokens", "0");
        yield return ("include_stop_str_in_output", "\"true\"");
        yield return ("model", "[\"fortune\"]");
        yield return ("model", "\"../../etc/passwd\"");
        yield return ("model", "\"/work\"");
    }

    private static string WithField(string baseBody, string field, string value) =>
        baseBody.TrimEnd('}') + $", \"{field}\": {value}}}";

    public static IReadOnlyList<HostileRequest> All()
    {
        var list = new List<HostileRequest>();
        foreach (string path in PostRoutes)
        {
            foreach (var (name, body) in NotJsonObjects())
                list.Add(new HostileRequest(name, "POST", path, body));
        }

        const string completion = """{"prompt": "Hello", "max_tokens": 2}""";
        const string chat = """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}""";
        foreach (var (field, value) in SamplingFields())
        {
            list.Add(Post($"{field}={Trim(value)}", "/v1/completions", WithField(completion, field, value)));
            list.Add(Post($"{field}={Trim(value)}", "/v1/chat/completions", WithField(chat, field, value)));
            // A render reads and checks a request as generation does, so it refuses the same requests.
            list.Add(Post($"{field}={Trim(value)}", "/v1/completions/render", WithField(completion, field, value)));
            list.Add(Post($"{field}={Trim(value)}", "/v1/chat/completions/render", WithField(chat, field, value)));
        }

        // Completions-only fields and prompt shapes.
        foreach (var (field, value) in new[]
                 {
                     ("logprobs", "-1"), ("logprobs", "100000"), ("logprobs", "\"5\""), ("echo", "\"no\""), ("best_of", "5"), ("suffix", "\"x\""),
                     ("stream_options", "\"yes\""),
                 })
            list.Add(Post($"{field}={value}", "/v1/completions", WithField(completion, field, value)));
        foreach (string prompt in new[]
                 {
                     "null", "5", "true", "{}", "[]", "[[]]", "[null]", "[1, \"a\"]", "[-1]", "[100000000]", "[2147483648]", "[1.5]", "[[1], \"a\"]",
                     "[[1, -3]]", "\"\"", "[\"\"]", "[" + string.Join(",", Enumerable.Repeat(5, 3000)) + "]", "\"" + string.Concat(Enumerable.Repeat("joke ", 3000)) + "\"",
                 })
        {
            list.Add(Post($"prompt={Trim(prompt)}", "/v1/completions", $"{{\"prompt\": {prompt}, \"max_tokens\": 2}}"));
            list.Add(Post($"prompt={Trim(prompt)}", "/v1/completions/render", $"{{\"prompt\": {prompt}, \"max_tokens\": 2}}"));
        }

        // Chat-only: messages, roles, content parts, tools, templates.
        foreach (string messages in new[]
                 {
                     "null", "[]", "{}", "\"hi\"", "[1]", "[null]", "[{}]", "[{\"role\": 1, \"content\": \"x\"}]", "[{\"role\": \"wizard\", \"content\": \"x\"}]",
                     "[{\"role\": \"\", \"content\": \"x\"}]", "[{\"role\": \"user\", \"content\": 5}]", "[{\"role\": \"user\", \"content\": {}}]",
                     "[{\"role\": \"user\", \"content\": [1]}]", "[{\"role\": \"user\", \"content\": [{\"type\": 5}]}]",
                     "[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"file:///etc/passwd\"}}]}]",
                     "[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 3}]}]",
                     "[{\"role\": \"user\", \"content\": \"" + string.Concat(Enumerable.Repeat("joke ", 2100)) + "\"}]",
                 })
        {
            list.Add(Post($"messages={Trim(messages)}", "/v1/chat/completions", $"{{\"messages\": {messages}, \"max_tokens\": 2}}"));
            list.Add(Post($"messages={Trim(messages)}", "/v1/chat/completions/render", $"{{\"messages\": {messages}, \"max_tokens\": 2}}"));
        }
        foreach (var (field, value) in new[]
                 {
                     ("tools", "\"x\""), ("tools", "[1]"), ("tools", "{}"), ("tools", "[null]"), ("tools", "[\"function\"]"), ("chat_template_kwargs", "[]"),
                     ("chat_template_kwargs", "\"x\""), ("response_format", "{\"type\": \"json_schema\"}"), ("response_format", "{\"type\": 5}"),
                     ("response_format", "{\"type\": {\"a\": 1}}"), ("top_logprobs", "21"), ("top_logprobs", "2147483647"), ("top_logprobs", "-1"), ("logprobs", "\"true\""),
                     ("continue_final_message", "5"), ("add_generation_prompt", "\"x\""), ("max_completion_tokens", "-1"),
                     ("stream_options", "[]"),
                     ("chat_template", "\"{{ raise_exception('x') }}\""), ("chat_template", "\"/etc/passwd\""),
                 })
            list.Add(Post($"{field}={Trim(value)}", "/v1/chat/completions", WithField(chat, field, value)));
        list.Add(Post("continue + add_generation_prompt", "/v1/chat/completions",
            WithField(WithField(chat, "continue_final_message", "true"), "add_generation_prompt", "true")));

        // Embeddings, tokenize, detokenize, invocations.
        foreach (string body in new[]
                 {
                     "{}", "{\"input\": null}", "{\"input\": 5}", "{\"input\": []}", "{\"input\": [-1]}", "{\"input\": [100000000]}",
                     "{\"input\": \"x\", \"encoding_format\": 1}", "{\"input\": \"x\", \"encoding_format\": \"int8\"}", "{\"input\": \"x\", \"dimensions\": -1}",
                     "{\"input\": \"x\", \"model\": \"nope\"}", "{\"input\": [" + string.Join(",", Enumerable.Repeat(5, 3000)) + "]}",
                 })
            list.Add(Post(Trim(body), "/v1/embeddings", body));
        foreach (string body in new[]
                 {
                     "{}", "{\"prompt\": 5}", "{\"prompt\": null}", "{\"prompt\": \"x\", \"add_special_tokens\": \"no\"}", "{\"messages\": 5}",
                     "{\"messages\": [{\"role\": \"wizard\"}]}", "{\"prompt\": \"x\", \"model\": \"nope\"}",
                 })
            list.Add(Post(Trim(body), "/tokenize", body));
        foreach (string body in new[]
                 {
                     "{}", "{\"tokens\": 5}", "{\"tokens\": [-1]}", "{\"tokens\": [100000000]}", "{\"tokens\": [\"a\"]}", "{\"tokens\": [1.5]}", "{\"tokens\": [1], \"model\": 5}",
                 })
            list.Add(Post(Trim(body), "/detokenize", body));
        foreach (string body in new[] { "{}", "{\"foo\": 1}", "{\"messages\": []}", "{\"prompt\": []}", "{\"input\": {}}" })
            list.Add(Post(Trim(body), "/invocations", body));

        // Transport-level hostility: oversized bodies, content types, methods, headers, unknown routes.
        // (Oversized bodies need a raw socket to see the early 413: see LimitsTests.)
        foreach (string path in new[] { "/v1/completions", "/v1/chat/completions", "/tokenize" })
        {
            list.Add(new HostileRequest("xml content type", "POST", path, Utf8("<prompt>x</prompt>"), "application/xml"));
            list.Add(new HostileRequest("huge header", "POST", path, Utf8(completion), Headers: [("X-Big", new string('a', 64 << 10))], TransportLevel: true));
            list.Add(new HostileRequest("many headers", "POST", path, Utf8(completion),
                Headers: Enumerable.Range(0, 200).Select(i => ($"X-H{i}", "v")).ToList(), TransportLevel: true));
        }
        foreach (var (method, path) in new[]
                 {
                     ("GET", "/v1/completions"), ("PUT", "/v1/chat/completions"), ("DELETE", "/v1/models"), ("GET", "/v1/embeddings"), ("PATCH", "/tokenize"),
                     ("GET", "/../../etc/passwd"), ("GET", "/v1/models/../../secret"), ("GET", "/v1/files"), ("POST", "/v1/responses"),
                 })
            list.Add(new HostileRequest("wrong method or route", method, path, method == "GET" ? null : Utf8("{}")));
        // Kestrel refuses a NUL in the path before routing: a bare 400.
        list.Add(new HostileRequest("NUL in path", "GET", "/%00", null, TransportLevel: true));
        foreach (string tool in new[]
                 {
                     "{\"type\": \"function\", \"function\": \"get_weather\"}", "{\"type\": \"function\", \"function\": {\"name\": 5}}",
                     "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": \"not a schema\"}}",
                     "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": [1, 2]}}", "{\"type\": \"retrieval\"}",
                     "{\"function\": {\"name\": \"f\"}}", "{\"type\": \"function\", \"function\": {\"name\": \"\"}}",
                     "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": {}}}",
                 })
            list.Add(Post($"tool {Trim(tool)}", "/v1/chat/completions", WithField(chat, "tools", $"[{tool}]")));
        return list;
    }

    private static string Trim(string s) => s.Length <= 40 ? s : s[..37] + "...";

    /// <summary>A valid request to mutate, per route.</summary>
    public static JsonObject Seed(string path, Random rng) => path switch
    {
        "/v1/chat/completions" => new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me a joke" }), ["max_tokens"] = 3,
            ["temperature"] = 0.5, ["stream"] = rng.Next(2) == 0, ["logprobs"] = true, ["top_logprobs"] = 2, ["stop"] = new JsonArray("x"),
        },
        "/v1/embeddings" => new JsonObject { ["input"] = new JsonArray("a", "b"), ["encoding_format"] = "float" },
        "/tokenize" => new JsonObject { ["prompt"] = "Hello world", ["add_special_tokens"] = true, ["return_token_strs"] = true },
        "/detokenize" => new JsonObject { ["tokens"] = new JsonArray(7397, 673) },
        _ => new JsonObject
        {
            ["prompt"] = new JsonArray(7397, 673), ["max_tokens"] = 3, ["n"] = 2, ["logprobs"] = 1, ["echo"] = true, ["seed"] = 7,
            ["stream"] = rng.Next(2) == 0, ["logit_bias"] = new JsonObject { ["5"] = 1 }, ["stop"] = new JsonArray("x"),
        },
    };
}
