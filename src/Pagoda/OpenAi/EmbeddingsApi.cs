using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Pagoda.OpenAi;

/// <summary>A parsed /v1/embeddings request.</summary>
public sealed record EmbeddingJob(IReadOnlyList<PromptInput> Inputs, bool Base64);

/// <summary>/v1/embeddings: inputs in OpenAI's prompt shapes, vectors as float lists or base64 float32.</summary>
public static class EmbeddingsApi
{
    /// <summary>Reads a request body; <paramref name="hiddenSize"/> is the only `dimensions` accepted.</summary>
    public static EmbeddingJob Parse(JsonObject body, int hiddenSize)
    {
        var f = new RequestFields(body);
        var inputs = CompletionsApi.ReadPrompts(body["input"], "input");
        string format = f.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64"))
            throw new OpenAiRequestException($"encoding_format must be 'float' or 'base64', got '{format}'.", "encoding_format");
        // The model has one embedding size (no Matryoshka truncation).
        if (f.Int("dimensions") is int d && d != hiddenSize)
            throw new OpenAiRequestException($"dimensions must be {hiddenSize} for this model, got {d}.", "dimensions");
        return new EmbeddingJob(inputs, format == "base64");
    }

    /// <summary>The response body for the vectors (in input order) and the prompts' token counts.</summary>
    public static JsonObject Response(string id, string model, long created, EmbeddingJob job, IReadOnlyList<float[]> vectors, int promptTokens)
    {
        var data = new JsonArray();
        for (int i = 0; i < vectors.Count; i++)
        {
            JsonNode embedding = job.Base64
                ? Convert.ToBase64String(MemoryMarshal.AsBytes(vectors[i].AsSpan()))
                : new JsonArray(vectors[i].Select(v => (JsonNode)v).ToArray());
            data.Add(new JsonObject { ["index"] = i, ["object"] = "embedding", ["embedding"] = embedding });
        }
        return new JsonObject
        {
            ["id"] = id,
            ["object"] = "list",
            ["created"] = created,
            ["model"] = model,
            ["data"] = data,
            ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["total_tokens"] = promptTokens },
        };
    }
}
