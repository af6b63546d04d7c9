using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.Tests.Support;

/// <summary>One greedy run recorded from Hugging Face transformers (tests/fixtures/golden/models.json).</summary>
public sealed record GoldenCase(
    string Model,
    string Kind,
    int Index,
    int[] PromptIds,
    int[] OutputIds,
    (int Token, double Logprob, (int Id, double Logprob)[] Top5)[] Steps,
    double?[] PromptLogprobs,
    (int Id, double Logprob)[] FirstTop10,
    string? Prompt,
    string? Text,
    JsonArray? Messages,
    string? Rendered)
{
    public override string ToString() => $"{Model}/{Kind}/{Index}";
}

public static class Golden
{
    // models.json (the first four models) and models-arch.json (the families added later), one entry per model.
    private static readonly Lazy<JsonObject> Models = new(() =>
    {
        var all = new JsonObject();
        foreach (string file in new[] { "models.json", "models-arch.json" })
        {
            foreach (var (name, entry) in JsonNode.Parse(File.ReadAllText(TestPaths.Golden(file)))!.AsObject())
                all[name] = entry!.DeepClone();
        }
        return all;
    });

    /// <summary>Every case of a model entry (fortune-chat, tiny-llama, ...) as xunit theory rows.</summary>
    public static IEnumerable<object[]> Cases(string model) =>
        new[] { "completions", "chats", "ids" }
            .Where(kind => Models.Value[model]![kind] != null)
            .SelectMany(kind => ((JsonArray)Models.Value[model]![kind]!).Select((_, i) => new object[] { kind, i }));

    public static GoldenCase Load(string model, string kind, int index)
    {
        var e = Models.Value[model]![kind]![index]!.AsObject();
        static (int, double)[] Pairs(JsonNode? n) =>
            n!.AsArray().Select(p => (p![0]!.GetValue<int>(), p[1]!.GetValue<double>())).ToArray();
        return new GoldenCase(
            model, kind, index,
            e["prompt_ids"]!.Deserialize<int[]>()!,
            e["output_ids"]!.Deserialize<int[]>()!,
            e["steps"]!.AsArray().Select(s => (s!["token"]!.GetValue<int>(), s["logprob"]!.GetValue<double>(), Pairs(s["top5"]))).ToArray(),
            e["prompt_logprobs"]!.AsArray().Select(v => v?.GetValue<double>()).ToArray(),
            Pairs(e["first_top10"]),
            e["prompt"]?.GetValue<string>(),
            e["text"]?.GetValue<string>(),
            e["messages"]?.DeepClone().AsArray(),
            e["rendered"]?.GetValue<string>());
    }
}
