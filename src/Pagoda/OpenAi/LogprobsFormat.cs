using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Tokenization;

namespace Pagoda.OpenAi;

/// <summary>Logprobs in the two OpenAI shapes: legacy completions and chat `content` entries.</summary>
internal static class LogprobsFormat
{
    public static string TokenText(Tokenizer tokenizer, int id) => tokenizer.Decode([id], skipSpecialTokens: false);

    /// <summary>Completions: parallel lists of tokens, their logprobs, top alternatives and text offsets.</summary>
    public static JsonObject Completion(Tokenizer tokenizer, IReadOnlyList<TokenLogprob?> entries, IReadOnlyList<int> ids, int textOffset)
    {
        var tokens = new JsonArray();
        var logprobs = new JsonArray();
        var tops = new JsonArray();
        var offsets = new JsonArray();
        int offset = textOffset;
        for (int i = 0; i < ids.Count; i++)
        {
            string text = TokenText(tokenizer, ids[i]);
            tokens.Add(text);
            offsets.Add(offset);
            offset += text.Length;
            if (entries[i] is not { } e)
            {
                logprobs.Add(null);
                tops.Add(null);
                continue;
            }
            logprobs.Add(e.Logprob);
            var top = new JsonObject();
            foreach (var t in e.Top)
                top[TokenText(tokenizer, t.TokenId)] = t.Logprob;
            top[text] = e.Logprob; // the chosen token is always listed
            tops.Add(top);
        }
        return new JsonObject { ["text_offset"] = offsets, ["token_logprobs"] = logprobs, ["tokens"] = tokens, ["top_logprobs"] = tops };
    }

    /// <summary>Chat: one entry per token with its bytes and the top alternatives.</summary>
    public static JsonObject Chat(Tokenizer tokenizer, IReadOnlyList<TokenLogprob> entries, int topLogprobs)
    {
        var content = new JsonArray();
        foreach (var e in entries)
        {
            var top = new JsonArray();
            foreach (var t in e.Top.Take(topLogprobs))
                top.Add(Entry(tokenizer, t.TokenId, t.Logprob));
            var item = Entry(tokenizer, e.TokenId, e.Logprob);
            item["top_logprobs"] = top;
            content.Add(item);
        }
        return new JsonObject { ["content"] = content };
    }

    private static JsonObject Entry(Tokenizer tokenizer, int id, double logprob)
    {
        string text = TokenText(tokenizer, id);
        return new JsonObject
        {
            ["token"] = text,
            ["logprob"] = Math.Max(logprob, -9999.0),
            ["bytes"] = new JsonArray(Encoding.UTF8.GetBytes(text).Select(b => (JsonNode)(int)b).ToArray()),
        };
    }
}
