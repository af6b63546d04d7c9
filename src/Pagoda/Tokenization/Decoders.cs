using System.Globalization;
using System.Text;

namespace Pagoda.Tokenization;

/// <summary>HF "decoder": turns the token strings of a decode back into text pieces.</summary>
internal abstract class Decoder
{
    /// <summary>One step of HF's decode_chain: token pieces in, pieces out (joined at the end).</summary>
    public abstract List<string> DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<Decoder> steps) : Decoder
{
    public IReadOnlyList<Decoder> Steps => steps;

    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var step in steps) tokens = step.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>HF "ByteLevel": maps the byte alphabet back to bytes and decodes UTF-8 lossily.</summary>
internal sealed class ByteLevelDecoder : Decoder
{
    internal static readonly UTF8Encoding Lossy = new(false, false);

    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens) ByteLevel.AppendTokenBytes(t, bytes);
        return [Lossy.GetString(bytes.ToArray())];
    }
}

/// <summary>HF "Replace" decoder: literal replacement in every token.</summary>
internal sealed class ReplaceDecoder(string pattern, string content) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => t.Replace(pattern, content, StringComparison.Ordinal)).ToList();
}

/// <summary>HF "ByteFallback": runs of &lt;0xXX&gt; tokens become the text their bytes spell.</summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
            {
                pending.Add(b);
                continue;
            }
            Flush();
            output.Add(t);
        }
        Flush();
        return output;

        void Flush()
        {
            if (pending.Count == 0) return;
            // HF emits one U+FFFD per byte when the run is not valid UTF-8.
            var bytes = pending.ToArray();
            try { output.Add(new UTF8Encoding(false, true).GetString(bytes)); }
            catch (DecoderFallbackException) { output.AddRange(Enumerable.Repeat("\uFFFD", bytes.Length)); }
            pending.Clear();
        }
    }
}

/// <summary>HF "Fuse": concatenates all tokens into one.</summary>
internal sealed class FuseDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>HF "Strip": removes up to start/stop copies of a character from each token's ends.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t =>
    {
        int s = 0, e = t.Length;
        for (int i = 0; i < start && s < e && t[s] == content; i++) s++;
        for (int i = 0; i < stop && e > s && t[e - 1] == content; i++) e--;
        return t[s..e];
    }).ToList();
}

/// <summary>
/// HF "Metaspace" decoder: the replacement character becomes a space, except that in the first token
/// every one of them is dropped unless the scheme is "never" (HF drops them all, not just the leading one).
/// </summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            output.Add(i == 0 && scheme != PrependScheme.Never
                ? tokens[i].Replace(replacement.ToString(), "", StringComparison.Ordinal)
                : tokens[i].Replace(replacement, ' '));
        }
        return output;
    }
}
