using Pagoda.Tests.Support;
using Pagoda.Tokenization;

namespace Pagoda.Tests.Tokenization;

public sealed class IncrementalDetokenizerTests
{
    private const int Seed = 7_340_033;

    public static TheoryData<string> Tokenizers() => SharedTokenizers.All();

    /// <summary>
    /// Streaming equals the full decode of prompt + output past the prompt's own decode (for an empty
    /// prompt, simply Decode(output)), over random mixes of real text, random ids and special tokens.
    /// Cases where HF's own decode is not monotonic (an invalid byte run turning text already decoded
    /// into U+FFFD, which no stream can take back) are left out; they must stay rare.
    /// </summary>
    [Theory, MemberData(nameof(Tokenizers))]
    public void Streaming_equals_full_decode(string name)
    {
        var tok = SharedTokenizers.Get(name);
        var rng = new Random(Seed);
        int checkedCases = 0, total = 0;
        for (int sample = 0; sample < 120; sample++)
        {
            bool skip = sample % 2 == 0;
            int[] prompt = sample % 3 == 0 ? [] : [.. tok.Encode(RandomText.Next(rng, 8))];
            int[] output = RandomOutput(tok, rng);
            total++;
            if (!Monotonic(tok, prompt, output, skip, out string expected)) continue;
            checkedCases++;

            var detok = new IncrementalDetokenizer(tok, prompt, skipSpecialTokens: skip);
            var deltas = new System.Text.StringBuilder();
            foreach (int id in output)
            {
                deltas.Append(detok.Push(id));
                Assert.StartsWith(detok.Text, expected, StringComparison.Ordinal);
            }
            Assert.Equal(deltas.ToString(), detok.Text);
            if (!expected.EndsWith('\uFFFD')) Assert.Equal(expected, detok.Text);
            if (prompt.Length == 0) Assert.StartsWith(detok.Text, tok.Decode(output, skip), StringComparison.Ordinal);
        }
        Assert.True(checkedCases * 4 >= total * 3, $"only {checkedCases} of {total} cases were monotonic");
    }

    [Theory]
    [InlineData("fortune")]
    [InlineData("qwen3")]
    [InlineData("llama3")]
    public void Byte_level_text_equals_decode_of_the_output_alone(string name)
    {
        var tok = SharedTokenizers.Get(name);
        var rng = new Random(Seed);
        for (int i = 0; i < 50; i++)
        {
            var prompt = tok.Encode(RandomText.Next(rng, 8));
            var output = tok.Encode(RandomText.Next(rng), addSpecialTokens: false);
            var detok = new IncrementalDetokenizer(tok, prompt);
            foreach (int id in output) detok.Push(id);
            Assert.Equal(tok.Decode(output, skipSpecialTokens: true), detok.Text);
        }
    }

    [Fact]
    public void Byte_fallback_characters_arrive_whole()
    {
        var tok = SharedTokenizers.Get("llama2");
        var ids = tok.Encode("你好👋🏽 ok", addSpecialTokens: false);
        var detok = new IncrementalDetokenizer(tok, []);
        var deltas = ids.Select(detok.Push).ToList();
        Assert.DoesNotContain(deltas, d => d.Contains('\uFFFD'));
        Assert.Contains("", deltas); // the first bytes of 👋 wait for the rest
        Assert.Equal("你好👋🏽 ok", detok.Text);
    }

    [Fact]
    public void Prompt_context_keeps_the_leading_space_like_vllm()
    {
        var tok = SharedTokenizers.Get("llama2");
        var detok = new IncrementalDetokenizer(tok, tok.Encode("My name is"));
        foreach (int id in tok.Encode("Joel", addSpecialTokens: false)) detok.Push(id);
        Assert.Equal(" Joel", detok.Text);
        Assert.Equal("Joel", tok.Decode(tok.Encode("Joel", addSpecialTokens: false)));
    }

    [Fact]
    public void Special_tokens_are_skipped_or_kept()
    {
        var tok = SharedTokenizers.Get("qwen3");
        var ids = tok.Encode("<|im_start|>assistant\nHi!<|im_end|>", addSpecialTokens: false);
        var skipping = new IncrementalDetokenizer(tok, []);
        var keeping = new IncrementalDetokenizer(tok, [], skipSpecialTokens: false);
        foreach (int id in ids) { skipping.Push(id); keeping.Push(id); }
        Assert.Equal("assistant\nHi!", skipping.Text);
        Assert.Equal("<|im_start|>assistant\nHi!<|im_end|>", keeping.Text);
    }

    [Fact]
    public void Without_spaces_between_special_tokens_a_second_added_token_is_its_raw_content()
    {
        // DeepSeek's decoder turns ▁ into a space; vLLM passes an added token that follows another verbatim.
        var tok = SharedTokenizers.Get("deepseek_v3");
        int[] ids = [128803, 128804]; // <｜User｜><｜Assistant｜>
        var detok = new IncrementalDetokenizer(tok, [], skipSpecialTokens: false, spacesBetweenSpecialTokens: false);
        Assert.Equal("<｜User｜>", detok.Push(ids[0]));
        Assert.Equal("<｜Assistant｜>", detok.Push(ids[1]));
        var plain = new IncrementalDetokenizer(tok, [], skipSpecialTokens: false);
        foreach (int id in ids) plain.Push(id);
        Assert.Equal(tok.Decode(ids), plain.Text);
    }

    [Fact]
    public void Window_stays_short_however_long_the_output()
    {
        var tok = SharedTokenizers.Get("qwen3");
        var ids = tok.Encode(string.Concat(Enumerable.Repeat("Streaming text, 流式文本 👋 ", 400)), addSpecialTokens: false);
        var detok = new IncrementalDetokenizer(tok, []);
        int maxWindow = 0;
        foreach (int id in ids)
        {
            detok.Push(id);
            maxWindow = Math.Max(maxWindow, detok.WindowLength);
        }
        Assert.True(ids.Count > 3000, $"only {ids.Count} tokens");
        Assert.True(maxWindow <= 6, $"window grew to {maxWindow}");
    }

    private static int[] RandomOutput(Tokenizer tok, Random rng)
    {
        var ids = new List<int>();
        int chunks = rng.Next(1, 6);
        for (int c = 0; c < chunks; c++)
        {
            switch (rng.Next(4))
            {
                case 0: ids.Add(rng.Next(tok.VocabSize)); break;
                case 1: if (tok.EosTokenId is int eos) ids.Add(eos); break;
                default: ids.AddRange(tok.Encode(RandomText.Next(rng, 6), addSpecialTokens: false)); break;
            }
        }
        return [.. ids];
    }

    // Expected stream text, and whether HF's decode only ever grows (trailing U+FFFD aside) along the output.
    private static bool Monotonic(Tokenizer tok, int[] prompt, int[] output, bool skip, out string expected)
    {
        string full = tok.Decode([.. prompt, .. output], skip);
        string promptText = tok.Decode(prompt, skip);
        expected = full.StartsWith(promptText, StringComparison.Ordinal) ? full[promptText.Length..] : "";
        if (!full.StartsWith(promptText, StringComparison.Ordinal) || promptText.EndsWith('\uFFFD')) return false;
        for (int k = 1; k <= output.Length; k++)
        {
            string partial = tok.Decode([.. prompt, .. output[..k]], skip).TrimEnd('\uFFFD');
            if (!full.StartsWith(partial, StringComparison.Ordinal)) return false;
        }
        return true;
    }
}
