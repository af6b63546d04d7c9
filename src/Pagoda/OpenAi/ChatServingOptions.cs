using Pagoda.OpenAi.Tools;

namespace Pagoda.OpenAi;

/// <summary>
/// The server's chat settings (vLLM's `--enable-auto-tool-choice`, `--tool-call-parser`): with both, a request
/// whose tool_choice is "auto" (the default when it sends tools) gets the calls in the output parsed into
/// `tool_calls`; without them such a request is a 400, as in vLLM. The engine's reasoning parser
/// (<see cref="EngineArgs.ReasoningParser"/>) splits reasoning from content first; tool calls are read from the content only.
/// </summary>
public sealed record ChatServingOptions
{
    /// <summary>Let the model decide to call tools (tool_choice "auto").</summary>
    public bool EnableAutoToolChoice { get; init; }

    /// <summary>How the model writes calls: one of <see cref="ToolCallParser.Names"/>.</summary>
    public string? ToolCallParser { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for a flag combination vLLM refuses.</summary>
    public void Validate()
    {
        if (ToolCallParser != null)
            Tools.ToolCallParser.Create(ToolCallParser);
        if (EnableAutoToolChoice && ToolCallParser == null)
            throw new ArgumentException("--enable-auto-tool-choice requires --tool-call-parser.");
    }
}
