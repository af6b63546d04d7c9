using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>
/// `run-batch`: an OpenAI batch file (one `{"custom_id", "method", "url", "body"}` per line) run offline as
/// one continuously batched job, as `vllm run-batch` does. Every line gets an output line, in input
/// order; a bad line gets a 400 with its error instead of stopping the batch.
/// </summary>
public static class BatchRunner
{
    private sealed record Job(string? CustomId, Func<JsonObject>? Respond, JsonObject? Error);

    /// <summary>Runs <paramref name="lines"/> and returns the output lines.</summary>
    public static List<string> Run(LLM llm, string model, IReadOnlyList<string> lines, IProgress<GenerateProgress>? progress = null)
    {
        var engine = llm.Engine;
        var prompts = new List<PromptInput>();
        var pars = new List<SamplingParams>();
        var results = new List<RequestOutput>();
        var jobs = new List<Job>();
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        foreach (string line in lines.Where(l => !string.IsNullOrWhiteSpace(l)))
        {
            string? customId = null;
            try
            {
                var req = JsonNode.Parse(line) as JsonObject ?? throw new OpenAiRequestException("Each line must be a JSON object.");
                customId = req["custom_id"] is JsonValue c && c.TryGetValue(out string? cid) ? cid : null;
                if (req["method"]?.GetValue<string>() is { } method && !method.Equals("POST", StringComparison.OrdinalIgnoreCase))
                    throw new OpenAiRequestException($"Unsupported method '{method}' (only POST).");
                var body = req["body"] as JsonObject ?? throw new OpenAiRequestException("'body' must be an object.");
                string url = req["url"]?.GetValue<string>() ?? "";
                int first = prompts.Count;
                switch (url)
                {
                    case "/v1/completions":
                        var cj = CompletionsApi.Parse(body, engine);
                        // Admission checks per line, so one bad prompt does not stop the batch.
                        prompts.AddRange(cj.Prompts.Select(p => SamplingParamsReader.Tokenize(engine, p, cj.MaxTokens)).ToList());
                        pars.AddRange(cj.Prompts.Select(_ => cj.Params));
                        jobs.Add(new Job(customId, () => CompletionsApi.Response(OpenAiJson.NewId("cmpl"), model, created, cj,
                            results.GetRange(first, cj.Prompts.Count), engine), null));
                        break;
                    case "/v1/chat/completions":
                        var chat = ChatCompletionsApi.Parse(body, engine);
                        prompts.Add(SamplingParamsReader.Tokenize(engine, chat.Prompt, chat.MaxTokens));
                        pars.Add(chat.Params);
                        jobs.Add(new Job(customId, () => ChatCompletionsApi.Response(OpenAiJson.NewId("chatcmpl"), model, created, chat,
                            results[first], engine), null));
                        break;
                    default:
                        throw new OpenAiRequestException($"Unsupported url '{url}' (supported: /v1/completions, /v1/chat/completions).");
                }
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
            {
                jobs.Add(new Job(customId, null, OpenAiJson.Error(e.Message)));
            }
        }

        results.AddRange(llm.Generate(prompts, pars, progress));
        return jobs.Select(Line).ToList();
    }

    private static string Line(Job job)
    {
        var response = new JsonObject { ["request_id"] = OpenAiJson.NewId("vllm-batch") };
        JsonNode? error = null;
        if (job.Respond is { } respond)
        {
            response["status_code"] = 200;
            response["body"] = respond();
        }
        else
        {
            response["status_code"] = 400;
            response["body"] = null;
            error = job.Error;
        }
        return new JsonObject
        {
            ["id"] = OpenAiJson.NewId("vllm"),
            ["custom_id"] = job.CustomId,
            ["response"] = response,
            ["error"] = error,
        }.ToJsonString();
    }
}
