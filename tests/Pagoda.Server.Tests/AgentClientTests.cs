using System.Diagnostics;

namespace Pagoda.Server.Tests;

/// <summary>
/// The agent frameworks people call a served model with, from npm at their pinned versions (Clients/package.json,
/// installed once into the git-ignored .cache/npm-clients): the official OpenAI Node SDK (.parse() with a zod
/// schema, json mode, a required tool call then its result in a second turn, a streamed named call), the Vercel AI
/// SDK (generateObject, generateText with required and named tool choice in a two-step loop) and LangChain JS
/// (withStructuredOutput by function calling, json schema and json mode; bindTools with a forced call).
/// </summary>
[Collection(ServerCollection.Name)]
public class AgentClientTests(ServerFixture f)
{
    [Fact]
    public void OpenAiNodeSdkVercelAiSdkAndLangChainJs()
    {
        string dir = NpmClients.Folder();
        var (code, output) = Run("node", $"agents.mjs {new Uri(f.BaseAddress, "/v1")} {ServerFixture.ApiKey} fortune", dir, TimeSpan.FromMinutes(4));
        Assert.True(code == 0, output);
        Assert.Equal(8, output.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal)));
    }

    /// <summary>A reasoning model's responses, through a server of its own: a chat template that opens &lt;think&gt; and the deepseek_r1 parser.</summary>
    [Fact]
    public async Task OpenAiNodeSdkReadsReasoningContent()
    {
        string template = File.ReadAllText(Path.Combine(Paths.FortuneChat, "chat_template.jinja"))
            .Replace(@"'<|im_start|>assistant\n'", @"'<|im_start|>assistant\n<think>\n'", StringComparison.Ordinal);
        Assert.Contains("<think>", template);
        using var engine = new Engine.AsyncLLMEngine(new Engine.LLMEngine(new EngineArgs
        {
            Model = Paths.FortuneChat, NumKvBlocks = 256, GenerationConfig = "vllm", ChatTemplate = template, ReasoningParser = "deepseek_r1",
        }));
        var server = PagodaServer.Create(new ServerOptions { Port = 0, ApiKey = "k", ServedModelNames = ["fortune-chat"] }, engine, TextWriter.Null);
        await server.StartAsync();
        try
        {
            string dir = NpmClients.Folder();
            var (code, output) = Run("node", $"reasoning.mjs {new Uri(server.Address, "/v1")} k fortune-chat", dir, TimeSpan.FromMinutes(2));
            Assert.True(code == 0, output);
            Assert.Equal(2, output.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal)));
        }
        finally
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
    }

    internal static (int Code, string Output) Run(string tool, string args, string dir, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(tool, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            return (-1, $"{tool} {args} timed out\n{stdout.Result}\n{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>The npm clients, installed once (under a lock) into .cache/npm-clients with the agents script beside them.</summary>
internal static class NpmClients
{
    public static string Folder()
    {
        string source = Path.Combine(Paths.Root, "tests", "Pagoda.Server.Tests", "Clients");
        string dir = Path.Combine(Paths.Root, ".cache", "npm-clients");
        Directory.CreateDirectory(dir);
        using var gate = new FileStream(Path.Combine(dir, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        string manifest = File.ReadAllText(Path.Combine(source, "package.json"));
        string installed = Path.Combine(dir, "installed.json");
        if (!File.Exists(installed) || File.ReadAllText(installed) != manifest)
        {
            File.WriteAllText(Path.Combine(dir, "package.json"), manifest);
            var (code, output) = AgentClientTests.Run("npm", "install --no-audit --no-fund --silent", dir, TimeSpan.FromMinutes(5));
            if (code != 0)
                throw new InvalidOperationException($"npm install in {dir} failed: {output}");
            File.WriteAllText(installed, manifest);
        }
        foreach (string script in Directory.GetFiles(source, "*.mjs"))
            File.Copy(script, Path.Combine(dir, Path.GetFileName(script)), overwrite: true);
        return dir;
    }
}
