using System.Collections.Concurrent;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Support;

/// <summary>
/// The five golden tokenizers, each loaded once per test process (the large ones take a while to build).
/// </summary>
public static class SharedTokenizers
{
    public static readonly string[] Names = ["fortune", "qwen3", "llama3", "llama2", "deepseek_v3"];

    private static readonly ConcurrentDictionary<string, Lazy<Tokenizer>> Cache = new();

    public static Tokenizer Get(string name) => Cache.GetOrAdd(name, n => new Lazy<Tokenizer>(() =>
        Tokenizer.FromFolder(n == "fortune" ? TestPaths.Model("fortune-chat") : NpmTokenizers.Folder(n)))).Value;

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var n in Names) data.Add(n);
        return data;
    }
}

/// <summary>Random text that mixes the scripts and symbols tokenizers treat differently.</summary>
public static class RandomText
{
    private static readonly string[] Pools =
    [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " ", "  ", "\n", "\t", "\r\n",
        ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
        "éèêëàâäôöüßçñÅÄÖåø",
        "你好世界中文字符测试日本語のテキスト",
        "привет мир", "مرحبا", "שלום", "Ωμέγα",
        "\u0301\u0308\u0327", // combining marks (NFC composes some of them)
        "😀👋🏽🇨🇳❤️🔥🚀", "\u200b\u200d",
    ];

    /// <summary>A string of valid UTF-16 (no lone surrogates) up to <paramref name="maxPieces"/> pieces long.</summary>
    public static string Next(Random rng, int maxPieces = 24)
    {
        var sb = new System.Text.StringBuilder();
        int pieces = rng.Next(1, maxPieces + 1);
        for (int i = 0; i < pieces; i++)
        {
            string pool = Pools[rng.Next(Pools.Length)];
            var runes = pool.EnumerateRunes().ToArray();
            int n = rng.Next(1, 4);
            for (int k = 0; k < n; k++) sb.Append(runes[rng.Next(runes.Length)].ToString());
        }
        return sb.ToString();
    }
}
