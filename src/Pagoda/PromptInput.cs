namespace Pagoda;

/// <summary>A prompt as text (tokenized with special tokens) or as token ids (used as given).</summary>
public sealed record PromptInput
{
    /// <summary>Prompt text, or null for a token-id prompt.</summary>
    public string? Text { get; init; }

    /// <summary>Prompt token ids, or null for a text prompt.</summary>
    public IReadOnlyList<int>? TokenIds { get; init; }

    /// <summary>Whether the tokenizer adds its special tokens (BOS); chat renders already hold them.</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>A text prompt.</summary>
    public static implicit operator PromptInput(string text) => new() { Text = text };

    /// <summary>A token-id prompt.</summary>
    public static PromptInput FromTokenIds(IReadOnlyList<int> ids) => new() { TokenIds = ids };
}
