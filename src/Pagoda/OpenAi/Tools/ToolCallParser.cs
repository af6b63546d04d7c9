using System.Security.Cryptography;

namespace Pagoda.OpenAi.Tools;

/// <summary>One function call found in generated text; <see cref="Arguments"/> is JSON text.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>What a parser found: the text meant for the user (null when there is none) and the calls.</summary>
public sealed record ParsedToolCalls(string? Content, IReadOnlyList<ToolCall> Calls);

/// <summary>
/// vLLM's tool parsers (`--tool-call-parser`): each recognises how one model family writes function calls in
/// its output. <see cref="Parse"/> reads a whole output; <see cref="Stream"/> follows a streamed one.
/// </summary>
public abstract class ToolCallParser
{
    /// <summary>The parsers <see cref="Create"/> knows.</summary>
    public static readonly string[] Names = ["hermes", "llama3_json", "mistral", "pythonic"];

    /// <summary>The parser called <paramref name="name"/>; an unknown name lists the supported ones.</summary>
    public static ToolCallParser Create(string name) => name switch
    {
        "hermes" => new HermesToolParser(),
        "llama3_json" => new Llama3JsonToolParser(),
        "mistral" => new MistralToolParser(),
        "pythonic" => new PythonicToolParser(),
        _ => throw new ArgumentException($"--tool-call-parser '{name}' is not supported (supported: {string.Join(", ", Names)})."),
    };

    /// <summary>The calls in a whole output; text that is not a well-formed call stays content, as in vLLM.</summary>
    public abstract ParsedToolCalls Parse(string output);

    /// <summary>Where calls start in <paramref name="text"/> (-1: none yet); text before it is content.</summary>
    internal abstract int CallsStart(string text);

    /// <summary>How many trailing characters of content-so-far may still turn out to begin the calls.</summary>
    internal abstract int HoldBack(string text);

    /// <summary>The calls seen so far in <paramref name="calls"/> (text from <see cref="CallsStart"/> on), possibly unfinished.</summary>
    internal abstract List<PartialCall> PartialCalls(string calls);

    /// <summary>
    /// Whether the calls were forced (tool_choice required or named): as in vLLM, only calls the model chose to
    /// make turn the finish reason into "tool_calls".
    /// </summary>
    public virtual bool Forced => false;

    /// <summary>Follows one streamed output.</summary>
    public ToolCallStream Stream() => new(this);

    /// <summary>vLLM's id for a call (`chatcmpl-tool-` and 32 hex digits).</summary>
    internal virtual string NewId() => "chatcmpl-tool-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}

/// <summary>A call as far as it has been generated: its name once complete, the raw text of its arguments so far.</summary>
internal sealed record PartialCall(string? Name, string Arguments, bool Complete);
