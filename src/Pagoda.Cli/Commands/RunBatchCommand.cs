using System.CommandLine;
using Pagoda.Loading.Hub;
using Pagoda.OpenAi;

namespace Pagoda.Cli.Commands;

/// <summary>`pagoda run-batch -i requests.jsonl -o results.jsonl`: an OpenAI batch file run offline.</summary>
internal static class RunBatchCommand
{
    public static Command Create(HubSettings hub, bool terminal)
    {
        var engine = new EngineOptions();
        var input = new Option<string>("-i", "--input-file") { Description = "OpenAI batch file (JSON lines).", Required = true };
        var output = new Option<string>("-o", "--output-file") { Description = "Where to write the results (JSON lines).", Required = true };
        var servedName = new Option<string?>("--served-model-name") { Description = "Model name reported in responses." };
        var cmd = new Command("run-batch", "Run an OpenAI batch file (/v1/completions and /v1/chat/completions bodies) offline.");
        engine.AddTo(cmd);
        cmd.Add(input);
        cmd.Add(output);
        cmd.Add(servedName);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            string inPath = r.GetValue(input)!;
            if (!File.Exists(inPath))
                throw new ArgumentException($"{inPath}: input file not found");
            var lines = File.ReadAllLines(inPath);
            var args = engine.Bind(r, hub, terminal ? new TerminalProgress(r.InvocationConfiguration.Error) : null);
            using var llm = new LLM(args);
            r.InvocationConfiguration.Error.WriteLine($"INFO {llm.Engine.KvCacheInfo}");
            string model = r.GetValue(servedName) ?? args.Model;
            var bar = terminal ? new ProgressBar(r.InvocationConfiguration.Error, "Running batch") : null;
            var results = BatchRunner.Run(llm, model, lines, bar);
            bar?.Finish();
            File.WriteAllLines(r.GetValue(output)!, results);
            return 0;
        }));
        return cmd;
    }
}
