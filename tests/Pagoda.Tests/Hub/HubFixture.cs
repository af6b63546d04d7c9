using Pagoda.Loading.Hub;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Hub;

/// <summary>A fake hub serving the fixture models under real-looking ids, and a temp cache; both disposed.</summary>
public sealed class HubFixture : IDisposable
{
    public HubFixture()
    {
        Cache = Directory.CreateTempSubdirectory("pagoda-hub-").FullName;
        Hub.Repos["Qwen/Qwen2.5-1.5B-Instruct"] = Repo(Files(TestPaths.Model("fortune-chat")));
        var opt = Files(TestPaths.Model("tiny-opt"), "model.safetensors");
        opt["pytorch_model.bin"] = File.ReadAllBytes(Path.Combine(TestPaths.Fixtures, "torch", "tiny-opt.pytorch_model.bin"));
        Hub.Repos["facebook/opt-125m"] = Repo(opt);
        var qwen3 = Files(TestPaths.Model("tiny-qwen3"), "model.safetensors");
        foreach (string f in new[] { "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json" })
            qwen3[f] = File.ReadAllBytes(Path.Combine(TestPaths.Fixtures, "torch", "tiny-qwen3." + f));
        Hub.Repos["Qwen/Qwen3-0.6B"] = Repo(qwen3);
    }

    public FakeHub Hub { get; } = new();

    public string Cache { get; }

    public HubSettings Settings => new()
    {
        Endpoint = Hub.Url,
        CacheDir = Path.Combine(Cache, "hub"),
        ModelScopeEndpoint = Hub.Url,
        ModelScopeCacheDir = Path.Combine(Cache, "modelscope"),
        // Generous: no test waits for a timeout, and on a loaded machine a 5 s one fired and retried a download,
        // which the once-only download tests then counted as a second fetch.
        MetadataTimeout = TimeSpan.FromSeconds(30),
        DownloadTimeout = TimeSpan.FromSeconds(30),
        RetryDelay = TimeSpan.FromMilliseconds(10),
        MaxAttempts = 3,
    };

    public static FakeRepo Repo(Dictionary<string, byte[]> files, string? token = null, bool gated = false)
    {
        var repo = new FakeRepo { RequiredToken = token, Gated = gated };
        repo.Add(files, "main", "master");
        return repo;
    }

    public static Dictionary<string, byte[]> Files(string dir, params string[] skip) =>
        Directory.GetFiles(dir).Where(f => !skip.Contains(Path.GetFileName(f)))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    public string Resolve(string repo, string? revision = null, HubSettings? settings = null, IProgress<DownloadProgress>? progress = null) =>
        ModelResolver.Resolve(repo, revision, null, settings ?? Settings, progress);

    public void Dispose()
    {
        Hub.Dispose();
        Directory.Delete(Cache, recursive: true);
    }
}
