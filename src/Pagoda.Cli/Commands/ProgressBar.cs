using System.Globalization;

namespace Pagoda.Cli.Commands;

/// <summary>
/// vLLM's tqdm line, redrawn in place on a terminal:
/// `Processed prompts: 37%|███▋      | 370/1000 [00:12&lt;00:20, 30.83it/s, est. speed input: 2113.00 toks/s, output: 845.00 toks/s]`.
/// </summary>
internal sealed class ProgressBar(TextWriter terminal, string description) : IProgress<GenerateProgress>
{
    private const int Width = 10;
    private static readonly string Partial = " ▏▎▍▌▋▊▉";
    private bool _drawn;

    public void Report(GenerateProgress p)
    {
        terminal.Write("\r" + Format(description, p));
        _drawn = true;
        if (p.Completed == p.Total)
            Finish();
    }

    public void Finish()
    {
        if (_drawn)
            terminal.WriteLine();
        _drawn = false;
    }

    public static string Format(string description, GenerateProgress p)
    {
        var inv = CultureInfo.InvariantCulture;
        double fraction = p.Total == 0 ? 1 : (double)p.Completed / p.Total;
        double seconds = Math.Max(p.Elapsed.TotalSeconds, 1e-9);
        double rate = p.Completed / seconds;
        var remaining = rate > 0 ? TimeSpan.FromSeconds((p.Total - p.Completed) / rate) : TimeSpan.Zero;
        int eighths = (int)(fraction * Width * 8);
        string bar = new string('█', eighths / 8) + (eighths / 8 < Width ? Partial[eighths % 8].ToString().Trim() : "");
        bar = bar.PadRight(Width);
        return string.Create(inv,
            $"{description}: {fraction * 100,3:F0}%|{bar}| {p.Completed}/{p.Total} [{Clock(p.Elapsed)}<{Clock(remaining)}, {rate:F2}it/s, " +
            $"est. speed input: {p.PromptTokens / seconds:F2} toks/s, output: {p.OutputTokens / seconds:F2} toks/s]");
    }

    private static string Clock(TimeSpan t) => t.TotalHours >= 1
        ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
        : t.ToString(@"mm\:ss", CultureInfo.InvariantCulture);
}
