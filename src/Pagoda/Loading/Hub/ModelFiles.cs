using System.Text.Json;

namespace Pagoda.Loading.Hub;

/// <summary>
/// Which files of a repo Pagoda needs: configs, tokenizer and chat template files, and one set of
/// weights (safetensors, else PyTorch .bin; sharded through their index). Nothing else is fetched.
/// </summary>
internal static class ModelFiles
{
    private static readonly string[] Metadata =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
    ];

    private static readonly (string Index, string Single)[] WeightKinds =
    [
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ];

    /// <summary>
    /// The files to fetch before any shard: the metadata files the repo has, plus its weight index (whose
    /// shards <see cref="Shards"/> names once it is on disk) or its single weight file.
    /// </summary>
    public static List<string> FirstPass(IReadOnlyCollection<string> repoFiles, string repo)
    {
        var set = repoFiles.ToHashSet(StringComparer.Ordinal);
        if (!set.Contains("config.json"))
            throw new ModelLoadException(repo, "the repository has no config.json; it is not a transformers model");
        var files = Metadata.Where(set.Contains).ToList();
        foreach (var (index, single) in WeightKinds)
        {
            if (set.Contains(index) || set.Contains(single))
            {
                files.Add(set.Contains(index) ? index : single);
                return files;
            }
        }
        throw new ModelLoadException(repo,
            "the repository has no model.safetensors, pytorch_model.bin or sharded index of either at the top level");
    }

    /// <summary>The shard files named by a weight index in <paramref name="folder"/>, if the first pass fetched one.</summary>
    public static List<string> Shards(string folder)
    {
        foreach (var (index, _) in WeightKinds)
        {
            string path = Path.Combine(folder, index);
            if (!File.Exists(path))
                continue;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                    throw new ModelLoadException(path, "missing 'weight_map' object");
                var shards = map.EnumerateObject().Select(p => p.Value.GetString() ?? "").Distinct().ToList();
                if (shards.Any(s => s.Length == 0 || s.Contains('/') || s.Contains('\\') || s.Contains("..")))
                    throw new ModelLoadException(path, "weight_map names a shard that is not a plain file name");
                return shards;
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new ModelLoadException(path, $"not a valid weight index ({e.Message})");
            }
        }
        return [];
    }

    /// <summary>Whether <paramref name="folder"/> holds config.json and a complete set of weights.</summary>
    public static bool IsComplete(string folder)
    {
        if (!File.Exists(Path.Combine(folder, "config.json")))
            return false;
        foreach (var (index, single) in WeightKinds)
        {
            // The same precedence as WeightStore: an index wins over a single file of its kind.
            if (File.Exists(Path.Combine(folder, index)))
            {
                try
                {
                    return Shards(folder).All(s => File.Exists(Path.Combine(folder, s)));
                }
                catch (ModelLoadException)
                {
                    return false;
                }
            }
            if (File.Exists(Path.Combine(folder, single)))
                return true;
        }
        return false;
    }
}
