using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.OpenAi;

/// <summary>
/// The `text_completion` chunks of one streamed completions request (one engine request per prompt): text
/// deltas, the finish reason on the chunk that ends a choice, and with include_usage a last chunk whose
/// `choices` is empty. Feed it each prompt's delta outputs in order, from one thread.
/// </summary>
public sealed class CompletionStream(string id, string model, long created, CompletionJob job, LLMEngine engine)
{
    private readonly Dictionary<int, int> _textOffsets = new();
    private readonly Dictionary<int, int> _promptTokens = new();
    private int _completionTokens;

    /// <summary>The chunks for one delta output of prompt <paramref name="promptIndex"/>.</summary>
    public IEnumerable<JsonObject> Next(int promptIndex, RequestOutput delta)
    {
        _promptTokens[promptIndex] = delta.PromptTokenIds.Count;
        foreach (var c in delta.Outputs)
        {
            int index = promptIndex * job.Params.N + c.Index;
            _completionTokens += c.TokenIds.Count;
            string text = c.Text;
            var ids = new List<int>();
            var entries = new List<TokenLogprob?>();
            if (!_textOffsets.ContainsKey(index) && job.Echo)
            {
                // The first chunk of an echoed choice carries the prompt (and its logprobs).
                text = (delta.Prompt ?? engine.Tokenizer.Decode(delta.PromptTokenIds)) + text;
                ids.AddRange(delta.PromptTokenIds);
                entries.AddRange(delta.PromptLogprobs ?? delta.PromptTokenIds.Select(_ => (TokenLogprob?)null).ToList());
            }
            ids.AddRange(c.TokenIds);
            if (c.Logprobs != null)
                entries.AddRange(c.Logprobs);
            int offset = _textOffsets.GetValueOrDefault(index);
            _textOffsets[index] = offset + text.Length;
            if (text.Length == 0 && ids.Count == 0 && c.FinishReason == null)
                continue;
            yield return Chunk(new JsonObject
            {
                ["index"] = index,
                ["text"] = text,
                ["logprobs"] = job.Logprobs != null ? LogprobsFormat.Completion(engine.Tokenizer, entries, ids, offset) : null,
                ["finish_reason"] = c.FinishReason,
                ["stop_reason"] = OpenAiJson.StopReason(c.StopReason),
            });
        }
    }

    /// <summary>The usage chunk when the request asked for it, else null.</summary>
    public JsonObject? Usage()
    {
        if (!job.IncludeUsage)
            return null;
        var chunk = Chunk();
        chunk["usage"] = OpenAiJson.Usage(_promptTokens.Values.Sum(), _completionTokens);
        return chunk;
    }

    private JsonObject Chunk(params JsonObject[] choices) =>
        OpenAiJson.StreamChunk(id, "text_completion", created, model, job.IncludeUsage, choices);
}
