using System.CommandLine;
using Pagoda.Loading.Hub;

namespace Pagoda.Cli.Commands;

/// <summary>`pagoda generate`: offline generation for prompts from flags or a JSON-lines file.</summary>
internal static class GenerateCommand
{
    public static Command Create(HubSettings hub, bool terminal)
    {
        var engine = new EngineOptions();
        var prompt = new Option<string[]>("--prompt") { Description = "A prompt (repeatable).", AllowMultipleArgumentsPerToken = false };
        var promptsFile = new Option<string?>("--prompts-file") { Description = "JSON lines: {\"prompt\"}, {\"prompt_token_ids\"} or {\"messages\"}." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (vLLM's RequestOutput) per prompt." };
        var sampling = new SamplingOptions();

        var cmd = new Command("generate", "Generate text for prompts with the embedded or a given model.");
        engine.AddTo(cmd);
        cmd.Add(prompt);
        cmd.Add(promptsFile);
        cmd.Add(json);
        sampling.AddTo(cmd);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            var lines = new List<PromptLine>();
            lines.AddRange((r.GetValue(prompt) ?? []).Select(p => new PromptLine(p, null, null)));
            if (r.GetValue(promptsFile) is { } file)
                lines.AddRange(PromptsFile.Read(file));
            if (lines.Count == 0)
                lines.AddRange(DefaultPrompts.Select(p => new PromptLine(p, null, null)));

            var progress = terminal ? new TerminalProgress(r.InvocationConfiguration.Error) : null;
            using var llm = new LLM(engine.Bind(r, hub, progress));
            var samplingParams = sampling.Bind(r, llm.GetDefaultSamplingParams(),
                llm.Engine.GenerationConfig.MaxNewTokens ?? SamplingOptions.DefaultMaxTokens);
            var inputs = lines.Select(l => l.Messages != null ? llm.RenderChat(l.Messages)
                : l.TokenIds != null ? PromptInput.FromTokenIds(l.TokenIds)
                : new PromptInput { Text = l.Prompt }).ToList();
            r.InvocationConfiguration.Error.WriteLine($"INFO {llm.Engine.KvCacheInfo}");
            var bar = terminal ? new ProgressBar(r.InvocationConfiguration.Error, "Processed prompts") : null;
            var outputs = llm.Generate(inputs, inputs.Select(_ => samplingParams).ToList(), bar);
            bar?.Finish();
            if (r.GetValue(json))
                OutputFormat.WriteJsonLines(r.InvocationConfiguration.Output, outputs);
            else
                OutputFormat.WriteText(r.InvocationConfiguration.Output, outputs);
            return 0;
        }));
        return cmd;
    }

    // vLLM's basic.py prompts, so the first run shows something familiar.
    private static readonly string[] DefaultPrompts =
    [
        "Hello, my name is",
        "The president of the United States is",
        "The capital of France is",
        "The future of AI is",
    ];
}
