using System.Text;

namespace Pagoda.OpenAi.Tools;

/// <summary>One piece of a streamed call, as OpenAI's delta carries it: id and name first, then the arguments in pieces.</summary>
public sealed record ToolCallDelta(int Index, string? Id, string? Name, string? Arguments);

/// <summary>
/// Follows one streamed output: text before the calls goes out as content (holding back what may still begin a
/// call), and each call goes out as a header (index, id, name) once its name is complete, then its arguments'
/// raw text as it grows. The pieces of a call's arguments concatenate to the JSON the model wrote.
/// </summary>
public sealed class ToolCallStream
{
    private readonly ToolCallParser _parser;
    private readonly StringBuilder _text = new();
    private readonly List<(string Id, int ArgumentsSent)> _calls = [];
    private int _contentSent, _callsStart = -1;

    internal ToolCallStream(ToolCallParser parser) => _parser = parser;

    /// <summary>Whether any call has been sent (the finish reason is then "tool_calls").</summary>
    public bool CalledTools => _calls.Count > 0;

    /// <summary>Takes the next text delta; <paramref name="final"/> flushes what was held back.</summary>
    public (string Content, List<ToolCallDelta> Calls) Push(string delta, bool final)
    {
        _text.Append(delta);
        string text = _text.ToString();
        string content = "";
        if (_callsStart < 0)
        {
            int start = _parser.CallsStart(text);
            int upTo = start >= 0 ? start : text.Length - (final ? 0 : _parser.HoldBack(text));
            content = text[_contentSent..upTo];
            _contentSent = upTo;
            if (start < 0)
                return (content, []);
            // From here on text goes out as content only if no call ever forms (see below).
            _callsStart = start;
        }
        var deltas = new List<ToolCallDelta>();
        var partial = _parser.PartialCalls(text[_callsStart..]);
        for (int i = 0; i < partial.Count && partial[i].Name is { } name; i++)
        {
            if (i == _calls.Count)
            {
                _calls.Add((_parser.NewId(), 0));
                deltas.Add(new ToolCallDelta(i, _calls[i].Id, name, ""));
            }
            var (id, sent) = _calls[i];
            string args = partial[i].Arguments;
            if (args.Length > sent)
            {
                deltas.Add(new ToolCallDelta(i, null, null, args[sent..]));
                _calls[i] = (id, args.Length);
            }
        }
        // Text that looked like the start of calls but never made one is the model's text after all.
        if (final && _calls.Count == 0)
        {
            content += text[_contentSent..];
            _contentSent = text.Length;
        }
        return (content, deltas);
    }
}
