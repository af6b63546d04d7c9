using System.Text.Json;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Tokenization;

/// <summary>One encode entry of tests/fixtures/golden/tokenizers.json (made with HF).</summary>
public sealed record GoldenEncode(
    string Text, int[] Ids, int[] IdsWithSpecial, string Decode, string DecodeSkipSpecial);

public static class GoldenTokenizers
{
    private static readonly Lazy<Dictionary<string, List<GoldenEncode>>> All = new(Load);

    public static IReadOnlyList<GoldenEncode> Encodes(string family) => All.Value[family];

    /// <summary>Case indices for a [Theory], so test names stay short.</summary>
    public static TheoryData<int> Cases(string family)
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Encodes(family).Count; i++) data.Add(i);
        return data;
    }

    private static Dictionary<string, List<GoldenEncode>> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestPaths.Golden("tokenizers.json")));
        var result = new Dictionary<string, List<GoldenEncode>>();
        foreach (var family in doc.RootElement.EnumerateObject())
        {
            result[family.Name] = family.Value.GetProperty("encode").EnumerateArray().Select(e => new GoldenEncode(
                e.GetProperty("text").GetString()!,
                e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                e.GetProperty("ids_with_special").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                e.GetProperty("decode").GetString()!,
                e.GetProperty("decode_skip_special").GetString()!)).ToList();
        }
        return result;
    }
}
