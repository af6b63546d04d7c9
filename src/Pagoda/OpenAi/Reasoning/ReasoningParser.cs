using System.Text;
using Pagoda.OpenAi.Tools;

namespace Pagoda.OpenAi.Reasoning;

/// <summary>
/// vLLM's reasoning parsers (`--reasoning-parser`): the text a reasoning model writes between &lt;think&gt; and
/// &lt;/think&gt; goes to `reasoning_content` (and `reasoning`), the rest to `content`. qwen3 separates only an
/// output that holds both tags; deepseek_r1 also reads an output whose &lt;think&gt; was in the prompt, and takes an
/// output that never closes its thinking as all reasoning.
/// </summary>
public sealed class ReasoningParser
{
    private const string Start = "<think>", End = "</think>";

    private ReasoningParser(string name) => Name = name;

    /// <summary>The parsers <see cref="Create"/> knows.</summary>
    public static IReadOnlyList<string> Names => EngineArgs.ReasoningParsers;

    /// <summary>qwen3 or deepseek_r1.</summary>
    public string Name { get; }

    /// <summary>The parser called <paramref name="name"/>; an unknown name lists the supported ones.</summary>
    public static ReasoningParser Create(string name) => Names.Contains(name) ? new ReasoningParser(name)
        : throw new ArgumentException($"--reasoning-parser '{name}' is not supported (supported: {string.Join(", ", Names)}).");

    private bool ClosedOnly => Name == "deepseek_r1";

    /// <summary>The reasoning and the content of a whole output (null where there is none).</summary>
    public (string? Reasoning, string? Content) Extract(string output)
    {
        int start = output.IndexOf(Start, StringComparison.Ordinal);
        if (!ClosedOnly && start < 0)
            return (null, output);
        string rest = start >= 0 ? output[(start + Start.Length)..] : output;
        int end = rest.IndexOf(End, StringComparison.Ordinal);
        if (end < 0)
            return ClosedOnly ? (rest, null) : (null, rest);
        string content = rest[(end + End.Length)..];
        return (rest[..end], content.Length > 0 ? content : null);
    }

    /// <summary>Follows one streamed output.</summary>
    public ReasoningStream Stream() => new(ClosedOnly);

    /// <summary>Splits a streamed output into reasoning and content deltas as it arrives, holding back partial tags.</summary>
    public sealed class ReasoningStream(bool reasoningFirst)
    {
        private readonly StringBuilder _pending = new();
        private int _mode = reasoningFirst ? 1 : 0; // 0: not yet known, 1: before the opening tag is settled, 2: reasoning, 3: content

        /// <summary>Takes the next text delta; <paramref name="final"/> flushes what was held back.</summary>
        public (string Reasoning, string Content) Push(string delta, bool final)
        {
            _pending.Append(delta);
            string text = _pending.ToString();
            if (_mode is 0 or 1)
            {
                if (text.StartsWith(Start, StringComparison.Ordinal))
                    (text, _mode) = (text[Start.Length..], 2);
                else if (Start.StartsWith(text, StringComparison.Ordinal) && !final)
                    return ("", "");
                else
                    _mode = _mode == 1 ? 2 : 3;
            }
            _pending.Clear();
            if (_mode == 3)
                return ("", text);
            int end = text.IndexOf(End, StringComparison.Ordinal);
            if (end >= 0)
            {
                _mode = 3;
                return (text[..end], text[(end + End.Length)..]);
            }
            int hold = final ? 0 : JsonCalls.PrefixOverlap(text, End);
            _pending.Append(text[(text.Length - hold)..]);
            return (text[..(text.Length - hold)], "");
        }
    }
}
