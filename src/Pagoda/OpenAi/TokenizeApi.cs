using System.Text.Json.Nodes;
using Pagoda.Engine;

namespace Pagoda.OpenAi;

/// <summary>vLLM's /tokenize and /detokenize: a prompt or a conversation to ids, and ids back to text.</summary>
public static class TokenizeApi
{
    /// <summary>
    /// `{"prompt", "add_special_tokens"}` or `{"messages", "add_generation_prompt", "tools", ...}` →
    /// `{"count", "max_model_len", "tokens", "token_strs"}`.
    /// </summary>
    public static JsonObject Tokenize(JsonObject body, LLMEngine engine)
    {
        var f = new RequestFields(body);
        string text;
        bool addSpecial;
        if (body.ContainsKey("messages"))
        {
            text = ChatCompletionsApi.Parse(body, engine).Prompt.Text!;
            addSpecial = f.Bool("add_special_tokens") ?? false;
        }
        else
        {
            text = f.String("prompt") ?? throw new OpenAiRequestException("Give 'prompt' (a string) or 'messages'.", "prompt");
            addSpecial = f.Bool("add_special_tokens") ?? true;
        }
        var ids = engine.Tokenizer.Encode(text, addSpecial);
        JsonNode? strs = f.Bool("return_token_strs") == true
            ? new JsonArray(ids.Select(id => (JsonNode)(engine.Tokenizer.IdToToken(id) ?? "")).ToArray())
            : null;
        return new JsonObject
        {
            ["count"] = ids.Count,
            ["max_model_len"] = engine.MaxModelLen,
            ["tokens"] = new JsonArray(ids.Select(id => (JsonNode)id).ToArray()),
            ["token_strs"] = strs,
        };
    }

    /// <summary>`{"tokens": [ids]}` → `{"prompt": text}`.</summary>
    public static JsonObject Detokenize(JsonObject body, LLMEngine engine)
    {
        var ids = new RequestFields(body).Ints("tokens") ?? throw new OpenAiRequestException("'tokens' must be a list of token ids.", "tokens");
        int vocab = engine.Folder.Config.VocabSize;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)vocab)
                throw new OpenAiRequestException($"Token id {id} is out of vocabulary (size {vocab}).", "tokens");
        }
        return new JsonObject { ["prompt"] = engine.Tokenizer.Decode(ids) };
    }
}
