using System.Text;

namespace Pagoda.Tokenization;

/// <summary>GPT-2's reversible byte to printable-character mapping used by byte-level BPE.</summary>
internal static class ByteLevel
{
    public static readonly char[] ByteToChar = BuildTable();
    public static readonly Dictionary<char, byte> CharToByte = ByteToChar
        .Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    // GPT-2's pre-tokenizer regex, used when a ByteLevel pre-tokenizer has use_regex.
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static char[] BuildTable()
    {
        // Printable bytes map to themselves; the rest are shifted to 256+ in order.
        var table = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)(256 + next++);
        }
        return table;
    }

    public static string Encode(string s)
    {
        int max = Encoding.UTF8.GetMaxByteCount(s.Length);
        Span<byte> bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(s, bytes);
        Span<char> chars = n <= 1024 ? stackalloc char[n] : new char[n];
        for (int i = 0; i < n; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>
    /// Appends the bytes a token stands for; as in HF, a token with any character outside the
    /// table (an added token such as "&lt;｜User｜&gt;") contributes its raw UTF-8 instead.
    /// </summary>
    public static void AppendTokenBytes(string token, List<byte> into)
    {
        foreach (char c in token)
        {
            if (!CharToByte.ContainsKey(c))
            {
                into.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
        }
        foreach (char c in token) into.Add(CharToByte[c]);
    }
}
