namespace Pagoda.Tokenization.Jinja;

/// <summary>Environment options that change how template text is lexed and how globals behave.</summary>
public sealed record JinjaOptions
{
    /// <summary>Jinja's own defaults: no trimming, one trailing newline of the source is dropped.</summary>
    public static JinjaOptions Default { get; } = new();

    /// <summary>
    /// What Hugging Face transformers uses for chat templates: <c>trim_blocks=True, lstrip_blocks=True</c>.
    /// </summary>
    public static JinjaOptions ChatTemplate { get; } = new() { TrimBlocks = true, LstripBlocks = true };

    /// <summary>Remove the first newline after a block or comment tag.</summary>
    public bool TrimBlocks { get; init; }

    /// <summary>Strip spaces and tabs from the start of a line up to a block or comment tag.</summary>
    public bool LstripBlocks { get; init; }

    /// <summary>Keep a single trailing newline of the source (Jinja drops it by default).</summary>
    public bool KeepTrailingNewline { get; init; }

    /// <summary>The clock behind <c>strftime_now</c>; local time when null.</summary>
    public Func<DateTime>? Clock { get; init; }
}
