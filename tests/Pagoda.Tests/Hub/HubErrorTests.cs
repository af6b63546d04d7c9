using System.Net;
using System.Net.Sockets;
using Pagoda.Cli;
using Pagoda.Loading;
using Pagoda.Loading.Hub;

namespace Pagoda.Tests.Hub;

/// <summary>Clear messages for 401/403/404 and network failures; ModelScope; settings from the environment; the CLI end to end.</summary>
public sealed class HubErrorTests : IDisposable
{
    private readonly HubFixture _f = new();

    public void Dispose() => _f.Dispose();

    private ModelLoadException Fails(string repo, string? revision = null, HubSettings? settings = null) =>
        Assert.Throws<ModelLoadException>(() => _f.Resolve(repo, revision, settings));

    [Fact]
    public void PrivateRepoWithoutTokenSaysToSetHfToken()
    {
        _f.Hub.Repos["acme/private-model"] = HubFixture.Repo(HubFixture.Files(Support.TestPaths.Model("tiny-opt")), token: "hf_secret");
        var e = Fails("acme/private-model");
        Assert.Equal("acme/private-model: repository not found, or it is private or gated (HTTP 401); if it exists, set HF_TOKEN to an access token that can read it", e.Message);

        string dir = _f.Resolve("acme/private-model", settings: _f.Settings with { Token = "hf_secret" });
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.All(_f.Hub.RequestsTo("/cdn-lfs/"), r => Assert.Null(r.Authorization)); // the token stays with the hub
        Assert.Contains(_f.Hub.Requests, r => r.Authorization == "Bearer hf_secret");
    }

    [Fact]
    public void GatedRepoSaysToAcceptTheConditions()
    {
        _f.Hub.Repos["meta-llama/Llama-3.2-1B"] = HubFixture.Repo(HubFixture.Files(Support.TestPaths.Model("tiny-llama")), token: "hf_ok", gated: true);
        var e = Fails("meta-llama/Llama-3.2-1B", settings: _f.Settings with { Token = "hf_other" });
        Assert.Contains("gated (HTTP 403)", e.Message);
        Assert.Contains("HF_TOKEN", e.Message);
    }

    [Fact]
    public void MissingRevisionAndRepoAre404s()
    {
        Assert.Equal("Qwen/Qwen2.5-1.5B-Instruct: revision 'v9' not found (HTTP 404)", Fails("Qwen/Qwen2.5-1.5B-Instruct", "v9").Message);
        var e = Fails("nobody/nothing", settings: _f.Settings with { Token = "hf_x" });
        Assert.Contains("no such repository", e.Message);
        Assert.Contains("HTTP 404", e.Message);
    }

    [Fact]
    public void ServerErrorsAreRetriedThenReported()
    {
        _f.Hub.FailWith = 503;
        var e = Fails("Qwen/Qwen2.5-1.5B-Instruct");
        Assert.Contains("HTTP 503 3 times", e.Message);
        Assert.Equal(3, _f.Hub.Requests.Count);
    }

    [Fact]
    public void UnreachableHubIsANetworkErrorNamingTheFix()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var e = Fails("Qwen/Qwen2.5-1.5B-Instruct", settings: _f.Settings with { Endpoint = $"http://127.0.0.1:{port}" });
        Assert.Contains($"could not reach http://127.0.0.1:{port} after 3 attempts", e.Message);
        Assert.Contains("HF_HUB_OFFLINE=1", e.Message);
    }

    [Fact]
    public void ModelScopeUsesItsApiAndCacheLayout()
    {
        _f.Hub.Repos["qwen/Qwen2.5-0.5B-Instruct"] = HubFixture.Repo(HubFixture.Files(Support.TestPaths.Model("tiny-qwen3")));
        var ms = _f.Settings with { UseModelScope = true };
        string dir = _f.Resolve("qwen/Qwen2.5-0.5B-Instruct", settings: ms);
        Assert.Equal(Path.Combine(_f.Cache, "modelscope", "models", "qwen", "Qwen2___5-0___5B-Instruct"), dir);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.Contains(_f.Hub.Requests, r => r.Path.StartsWith("/api/v1/models/qwen/Qwen2.5-0.5B-Instruct/repo/files?Revision=master", StringComparison.Ordinal));
        int before = _f.Hub.Requests.Count;
        Assert.Equal(dir, _f.Resolve("qwen/Qwen2.5-0.5B-Instruct", settings: ms));
        Assert.Equal(before, _f.Hub.Requests.Count);

        var e = Fails("qwen/missing", settings: ms);
        Assert.Contains("no such model or revision 'master' on ModelScope", e.Message);
    }

    [Fact]
    public void ModelScopeCorruptionIsDetected()
    {
        _f.Hub.Repos["qwen/tiny"] = HubFixture.Repo(HubFixture.Files(Support.TestPaths.Model("tiny-qwen3")));
        _f.Hub.Corrupt["model.safetensors"] = true;
        var e = Fails("qwen/tiny", settings: _f.Settings with { UseModelScope = true });
        Assert.Contains("sha256", e.Message);
        Assert.False(File.Exists(Path.Combine(_f.Cache, "modelscope", "models", "qwen", "tiny", "model.safetensors")));
    }

    [Fact]
    public void SettingsFollowHuggingfaceHubPrecedence()
    {
        var s = HubSettings.FromEnvironment(new Dictionary<string, string?>
        {
            ["HOME"] = "/home/u", ["HF_HOME"] = "/data/hf", ["HF_ENDPOINT"] = "http://127.0.0.1:9/", ["HF_HUB_OFFLINE"] = "1",
            ["VLLM_USE_MODELSCOPE"] = "True", ["MODELSCOPE_DOMAIN"] = "ms.example",
        });
        Assert.Equal(("/data/hf/hub", "http://127.0.0.1:9", true, true, "https://ms.example"),
            (s.CacheDir, s.Endpoint, s.Offline, s.UseModelScope, s.ModelScopeEndpoint));
        var t = HubSettings.FromEnvironment(new Dictionary<string, string?>
        {
            ["HOME"] = "/home/u", ["HF_HUB_CACHE"] = "~/c", ["HF_TOKEN"] = "hf_t", ["PAGODA_USE_MODELSCOPE"] = "false", ["VLLM_USE_MODELSCOPE"] = "true",
        });
        Assert.Equal(("/home/u/c", "hf_t", false, false, "/home/u/.cache/modelscope/hub"),
            (t.CacheDir, t.Token, t.Offline, t.UseModelScope, t.ModelScopeCacheDir));
        Assert.Equal("/home/u/.cache/huggingface/hub", HubSettings.FromEnvironment(new Dictionary<string, string?> { ["HOME"] = "/home/u" }).CacheDir);
    }

    [Fact]
    public void CliGeneratesFromARepoIdAndTheSecondRunMakesNoRequest()
    {
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = _f.Hub.Url, ["HF_HOME"] = Path.Combine(_f.Cache, "home") };
        string[] Args(string model) => ["generate", "--model", model, "--prompt", "Hello, my name is", "--temperature", "0", "--max-tokens", "12"];
        (int, string, string) Run(string model, Dictionary<string, string?> environment)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            int code = PagodaCli.Run(Args(model), output, error, environment);
            return (code, output.ToString(), error.ToString());
        }

        var (code, output, err) = Run("Qwen/Qwen2.5-1.5B-Instruct", env);
        Assert.True(code == 0, err);
        var (_, local, _) = Run(Support.TestPaths.Model("fortune-chat"), env);
        Assert.Equal(local, output);
        Assert.True(Directory.Exists(Path.Combine(_f.Cache, "home", "hub", "models--Qwen--Qwen2.5-1.5B-Instruct", "snapshots")));

        int before = _f.Hub.Requests.Count;
        var (again, output2, err2) = Run("Qwen/Qwen2.5-1.5B-Instruct", env);
        Assert.True(again == 0, err2);
        Assert.Equal(output, output2);
        Assert.Equal(before, _f.Hub.Requests.Count);

        var (bad, _, message) = Run("Qwen/Qwen2.5-1.5B-Instruct", new(env) { ["HF_HOME"] = Path.Combine(_f.Cache, "empty"), ["HF_HUB_OFFLINE"] = "1" });
        Assert.Equal(1, bad);
        Assert.StartsWith("error: Qwen/Qwen2.5-1.5B-Instruct: revision 'main' is not in the cache", message);
    }

    [Fact]
    public void DownloadDirReplacesTheCache()
    {
        string dir = Path.Combine(_f.Cache, "dl");
        string snapshot = ModelResolver.Resolve("facebook/opt-125m", null, dir, _f.Settings);
        Assert.StartsWith(Path.Combine(dir, "models--facebook--opt-125m", "snapshots"), snapshot);
        Assert.False(Directory.Exists(_f.Settings.CacheDir));
    }

    [Theory]
    [InlineData("Qwen/Qwen2.5-1.5B-Instruct", true)]
    [InlineData("gpt2", true)]
    [InlineData("/abs/path", false)]
    [InlineData("a/b/c", false)]
    [InlineData("org--x/y", false)]
    [InlineData("./model", false)]
    public void RepoIdShape(string model, bool isRepoId) => Assert.Equal(isRepoId, ModelResolver.IsRepoId(model));
}
