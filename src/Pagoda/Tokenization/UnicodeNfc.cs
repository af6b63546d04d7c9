using System.Globalization;
using System.Reflection;
using System.Text;

namespace Pagoda.Tokenization;

/// <summary>
/// Unicode NFC. The app runs with InvariantGlobalization, where string.Normalize leaves text
/// unchanged, so composition uses tables generated from Python's unicodedata (tools/gen_nfc_data.py).
/// </summary>
internal static class UnicodeNfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Tables> Data = new(Load);

    private sealed record Tables(
        Dictionary<int, byte> Ccc, Dictionary<int, int[]> Decomp, Dictionary<long, int> Compose, string Version);

    /// <summary>The Unicode version of the tables.</summary>
    public static string UnicodeVersion => Data.Value.Version;

    public static string Normalize(string s)
    {
        // Nothing below U+0300 decomposes or combines with a neighbour under NFC.
        bool simple = true;
        foreach (char c in s)
        {
            if (c >= 0x300) { simple = false; break; }
        }
        if (simple) return s;

        var t = Data.Value;
        var buf = new List<int>(s.Length + 8);
        foreach (Rune r in s.EnumerateRunes())
            Decompose(t, r.Value, buf);
        Reorder(t, buf);
        Compose(t, buf);

        var sb = new StringBuilder(buf.Count);
        foreach (int cp in buf) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }

    private static byte Ccc(Tables t, int cp) => t.Ccc.TryGetValue(cp, out byte c) ? c : (byte)0;

    private static void Decompose(Tables t, int cp, List<int> buf)
    {
        int si = cp - SBase;
        if (si is >= 0 and < SCount)
        {
            buf.Add(LBase + si / NCount);
            buf.Add(VBase + si % NCount / TCount);
            if (si % TCount != 0) buf.Add(TBase + si % TCount);
            return;
        }
        if (t.Decomp.TryGetValue(cp, out var seq)) buf.AddRange(seq);
        else buf.Add(cp);
    }

    // Canonical ordering: stable sort of each run of non-starters by combining class.
    private static void Reorder(Tables t, List<int> buf)
    {
        for (int i = 1; i < buf.Count; i++)
        {
            byte ci = Ccc(t, buf[i]);
            if (ci == 0) continue;
            int j = i;
            while (j > 0)
            {
                byte cj = Ccc(t, buf[j - 1]);
                if (cj == 0 || cj <= ci) break;
                (buf[j - 1], buf[j]) = (buf[j], buf[j - 1]);
                j--;
            }
        }
    }

    private static int? Pair(Tables t, int a, int b)
    {
        int li = a - LBase, vi = b - VBase;
        if (li is >= 0 and < LCount && vi is >= 0 and < VCount)
            return SBase + (li * VCount + vi) * TCount;
        int si = a - SBase, ti = b - TBase;
        if (si is >= 0 and < SCount && si % TCount == 0 && ti is > 0 and < TCount)
            return a + ti;
        return t.Compose.TryGetValue(((long)a << 21) | (uint)b, out int c) ? c : null;
    }

    private static void Compose(Tables t, List<int> buf)
    {
        if (buf.Count == 0) return;
        int starterPos = 0;
        int lastClass = Ccc(t, buf[0]) == 0 ? 0 : 256;
        int write = 1;
        for (int read = 1; read < buf.Count; read++)
        {
            int ch = buf[read];
            int chClass = Ccc(t, ch);
            int? composite = lastClass == 256 ? null : Pair(t, buf[starterPos], ch);
            if (composite is int c && (lastClass < chClass || lastClass == 0))
            {
                buf[starterPos] = c;
                continue;
            }
            if (chClass == 0) starterPos = write;
            lastClass = chClass;
            buf[write++] = ch;
        }
        buf.RemoveRange(write, buf.Count - write);
    }

    private static Tables Load()
    {
        var ccc = new Dictionary<int, byte>();
        var decomp = new Dictionary<int, int[]>();
        var compose = new Dictionary<long, int>();
        string version = "";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Pagoda.Tokenization.nfc-data.txt")
            ?? throw new InvalidOperationException("embedded NFC table missing");
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is string line)
        {
            if (line.Length < 2) continue;
            string[] f = line[2..].Split(' ');
            switch (line[0])
            {
                case 'V': version = f[0]; break;
                case 'C':
                    for (int cp = Hex(f[0]); cp <= Hex(f[1]); cp++) ccc[cp] = byte.Parse(f[2], CultureInfo.InvariantCulture);
                    break;
                case 'D': decomp[Hex(f[0])] = f.Skip(1).Select(Hex).ToArray(); break;
                case 'P': compose[((long)Hex(f[0]) << 21) | (uint)Hex(f[1])] = Hex(f[2]); break;
            }
        }
        return new Tables(ccc, decomp, compose, version);
    }

    private static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
