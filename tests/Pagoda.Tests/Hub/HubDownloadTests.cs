using Pagoda.Loading;
using Pagoda.Loading.Hub;

namespace Pagoda.Tests.Hub;

/// <summary>Downloads from the fake Hub into a huggingface_hub-shaped cache: layout, reuse, resume, verification, locking.</summary>
public sealed class HubDownloadTests : IDisposable
{
    private const string Qwen = "Qwen/Qwen2.5-1.5B-Instruct";
    private readonly HubFixture _f = new();

    public void Dispose() => _f.Dispose();

    private FakeCommit Main(string repo = Qwen) => _f.Hub.Repos[repo].Commits[_f.Hub.Repos[repo].Refs["main"]];

    private string RepoFolder => Path.Combine(_f.Settings.CacheDir, "models--Qwen--Qwen2.5-1.5B-Instruct");

    private sealed class Collect : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];

        public void Report(DownloadProgress value)
        {
            lock (Reports)
                Reports.Add(value);
        }
    }

    [Fact]
    public void FirstDownloadWritesHuggingFaceHubLayout()
    {
        var progress = new Collect();
        string snapshot = _f.Resolve(Qwen, progress: progress);
        var commit = Main();

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit.Sha), snapshot);
        Assert.Equal(commit.Sha, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")));
        foreach (string file in new[] { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "model.safetensors" })
        {
            var info = new FileInfo(Path.Combine(snapshot, file));
            Assert.Equal($"../../blobs/{FakeHub.Etag(file, commit.Files[file])}", info.LinkTarget);
            Assert.Equal(commit.Files[file], File.ReadAllBytes(info.FullName));
        }
        Assert.False(File.Exists(Path.Combine(snapshot, "TRAINING.json")), "only the files a model needs are fetched");
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
        Assert.True(Directory.Exists(Path.Combine(_f.Settings.CacheDir, ".locks", "models--Qwen--Qwen2.5-1.5B-Instruct")));
        var last = progress.Reports.MaxBy(p => (p.FilesDone, p.BytesDone))!;
        Assert.Equal((6, 6), (last.FilesDone, last.FilesTotal));
        Assert.Equal(last.BytesTotal, last.BytesDone);
        // LFS files come from the CDN redirect, without the token.
        Assert.Single(_f.Hub.RequestsTo("/cdn-lfs/"));
    }

    [Fact]
    public void CompleteSnapshotInTheCacheIsUsedWithoutARequest()
    {
        string first = _f.Resolve(Qwen);
        int before = _f.Hub.Requests.Count;
        Assert.Equal(first, _f.Resolve(Qwen));
        Assert.Equal(first, _f.Resolve(Qwen, Main().Sha));
        Assert.Equal(before, _f.Hub.Requests.Count);
        using var llm = new LLM(new EngineArgs { Model = Qwen, Hub = _f.Settings });
        Assert.Equal(first, llm.Engine.Folder.Path);
        Assert.Equal(before, _f.Hub.Requests.Count);
    }

    [Fact]
    public void OfflineUsesOnlyTheCache()
    {
        var offline = _f.Settings with { Offline = true };
        var e = Assert.Throws<ModelLoadException>(() => _f.Resolve(Qwen, settings: offline));
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Empty(_f.Hub.Requests);
        string snapshot = _f.Resolve(Qwen);
        Assert.Equal(snapshot, _f.Resolve(Qwen, settings: offline));
    }

    [Fact]
    public void InterruptedDownloadResumesWithARange()
    {
        _f.Hub.CutNextDownload["model.safetensors"] = 1 << 20;
        string snapshot = _f.Resolve(Qwen);
        Assert.Equal(Main().Files["model.safetensors"], File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors")));
        var gets = _f.Hub.RequestsTo("/cdn-lfs/");
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.Equal("bytes=1048576-", gets[1].Range);
    }

    [Fact]
    public void PartialFileLeftByAnEarlierRunIsResumed()
    {
        byte[] weights = Main().Files["model.safetensors"];
        string blob = Path.Combine(RepoFolder, "blobs", FakeHub.Sha256(weights));
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        File.WriteAllBytes(blob + ".incomplete", weights[..5000]);
        _f.Resolve(Qwen);
        Assert.Equal("bytes=5000-", Assert.Single(_f.Hub.RequestsTo("/cdn-lfs/")).Range);
        Assert.Equal(weights, File.ReadAllBytes(blob));
    }

    [Fact]
    public void CorruptedDownloadIsDetectedAndNothingIsLinked()
    {
        _f.Hub.Corrupt["model.safetensors"] = true;
        var e = Assert.Throws<ModelLoadException>(() => _f.Resolve(Qwen));
        Assert.Contains("sha256", e.Message);
        Assert.Contains("model.safetensors", e.Message);
        string snapshot = Path.Combine(RepoFolder, "snapshots", Main().Sha);
        Assert.False(File.Exists(Path.Combine(snapshot, "model.safetensors")));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));

        _f.Hub.Corrupt.Clear();
        Assert.Equal(snapshot, _f.Resolve(Qwen)); // the next run fetches it cleanly
    }

    [Fact]
    public void StaleCorruptPartialFileIsRetriedFromScratch()
    {
        byte[] weights = Main().Files["model.safetensors"];
        string blob = Path.Combine(RepoFolder, "blobs", FakeHub.Sha256(weights));
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        File.WriteAllBytes(blob + ".incomplete", new byte[5000]); // not the file's real first bytes
        _f.Resolve(Qwen);
        Assert.Equal(weights, File.ReadAllBytes(blob));
        Assert.Equal(["bytes=5000-", null], _f.Hub.RequestsTo("/cdn-lfs/").Select(r => r.Range));
    }

    [Fact]
    public async Task TwoConcurrentDownloadsFetchEachBlobOnce()
    {
        _f.Hub.BodyDelay = TimeSpan.FromMilliseconds(150);
        var a = Task.Run(() => _f.Resolve(Qwen));
        var b = Task.Run(() => _f.Resolve(Qwen));
        var paths = await Task.WhenAll(a, b);
        Assert.Equal(paths[0], paths[1]);
        Assert.Single(_f.Hub.RequestsTo("/cdn-lfs/"));
        Assert.Single(_f.Hub.Requests, r => r.Method == "GET" && r.Path.EndsWith("/tokenizer.json", StringComparison.Ordinal));
        Assert.Equal(Main().Files["model.safetensors"], File.ReadAllBytes(Path.Combine(paths[0], "model.safetensors")));
    }

    [Fact]
    public void RevisionPinningSelectsTheCommit()
    {
        var repo = _f.Hub.Repos[Qwen];
        var old = repo.Commits[repo.Refs["main"]];
        var files = new Dictionary<string, byte[]>(old.Files) { ["generation_config.json"] = "{\"max_new_tokens\": 5}"u8.ToArray() };
        repo.Refs["v1.0"] = old.Sha;
        var latest = repo.Add(files, "main");

        string pinned = _f.Resolve(Qwen, old.Sha);
        Assert.EndsWith(old.Sha, pinned);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "refs", "main")), "a commit hash needs no ref");
        Assert.EndsWith(old.Sha, _f.Resolve(Qwen, "v1.0"));
        Assert.Equal(old.Sha, File.ReadAllText(Path.Combine(RepoFolder, "refs", "v1.0")));
        string main = _f.Resolve(Qwen);
        Assert.EndsWith(latest.Sha, main);
        Assert.Equal("{\"max_new_tokens\": 5}", File.ReadAllText(Path.Combine(main, "generation_config.json")));
        // Unchanged files share their blobs: the weights were fetched once for both commits.
        Assert.Single(_f.Hub.RequestsTo("/cdn-lfs/"));
    }

    [Fact]
    public void PytorchBinRepoLoadsThroughTheCache()
    {
        string snapshot = _f.Resolve("facebook/opt-125m");
        Assert.True(File.Exists(Path.Combine(snapshot, "pytorch_model.bin")));
        string sharded = _f.Resolve("Qwen/Qwen3-0.6B");
        Assert.True(File.Exists(Path.Combine(sharded, "pytorch_model-00002-of-00002.bin")));
        using var llm = new LLM(new EngineArgs { Model = "Qwen/Qwen3-0.6B", Hub = _f.Settings });
        var output = llm.Generate([PromptInput.FromTokenIds([5, 17, 300])], new SamplingParams { Temperature = 0, MaxTokens = 3 });
        Assert.Equal(3, output[0].Outputs[0].TokenIds.Count);
    }
}
