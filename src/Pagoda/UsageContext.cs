namespace Pagoda;

/// <summary>
/// What runs an engine (vLLM's UsageContext): devices pick their batch defaults by it, a larger step budget offline,
/// where only throughput counts, than for a server, whose running requests wait on every step.
/// </summary>
public enum UsageContext
{
    /// <summary>In-process generation: <see cref="LLM"/>, `pagoda generate`, `run-batch`, `bench`.</summary>
    LlmClass,

    /// <summary>`pagoda serve`.</summary>
    OpenAIApiServer,
}
