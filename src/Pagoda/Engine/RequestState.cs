using System.Text;
using Pagoda.Requests;
using Pagoda.Tokenization;

namespace Pagoda.Engine;

/// <summary>
/// The engine's record of one sequence (vLLM's RequestState): the scheduler's <see cref="Request"/>, its
/// prompt, the detokenizer, text, logprobs and how much of it has already been sent. The engine finds a
/// sequence's every piece of state through this one record.
/// </summary>
internal sealed class RequestState(Request request, ParentRequest parent, int index, IncrementalDetokenizer? detokenizer)
{
    // Appended to every token; a string grown by += would copy the whole text each time.
    private readonly StringBuilder _text = new();

    public Request Request { get; } = request;
    public string RequestId => Request.RequestId;
    public ParentRequest Parent { get; } = parent;
    public int Index { get; } = index;
    public SamplingParams Params => Parent.Params;
    public IncrementalDetokenizer? Detokenizer { get; } = detokenizer;

    public AppendOnlyList<int> TokenIds { get; } = new();
    public AppendOnlyList<TokenLogprob>? Logprobs { get; } = parent.Params.Logprobs != null ? new() : null;
    public double CumulativeLogprob { get; set; }

    /// <summary>Characters of text, cut at a stop string once one is found.</summary>
    public int TextLength => _text.Length;

    public StringBuilder Text => _text;

    /// <summary>Characters <paramref name="from"/> .. <paramref name="to"/> of the text.</summary>
    public string TextRange(int from, int to) => _text.ToString(from, to - from);

    public string? FinishReason { get; set; }
    public object? StopReason { get; set; }
    public bool IsFinished => FinishReason != null;

    public int SentTextLength { get; set; }
    public int SentTokens { get; set; }
    public int SentLogprobs { get; set; }
    public bool FinishSent { get; set; }
}

/// <summary>A prompt and its N sequences; outputs are reported per prompt.</summary>
internal sealed class ParentRequest(string requestId, string? prompt, int[] promptTokenIds, SamplingParams p)
{
    public string RequestId { get; } = requestId;
    public string? Prompt { get; } = prompt;
    public int[] PromptTokenIds { get; } = promptTokenIds;
    public SamplingParams Params { get; } = p;
    public List<TokenLogprob?>? PromptLogprobs { get; } = p.PromptLogprobs != null ? [null] : null;
    public RequestState[] Children { get; set; } = [];
    public bool PromptLogprobsSent { get; set; }

    /// <summary>Whether the step being processed has already listed this prompt for an output.</summary>
    public bool Touched { get; set; }

    public bool IsFinished
    {
        get
        {
            foreach (var c in Children)
            {
                if (!c.IsFinished)
                    return false;
            }
            return true;
        }
    }
}
