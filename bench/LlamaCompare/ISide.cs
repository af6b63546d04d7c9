namespace LlamaCompare;

/// <summary>One engine under test, driven a token at a time so two sides can alternate step by step.</summary>
internal interface ISide : IDisposable
{
    /// <summary>Prefills the prompt and picks the first token (greedy); returns seconds.</summary>
    double Start(int[] prompt, int outputLen);

    /// <summary>Generates the next token (greedy); returns seconds.</summary>
    double Next();
}
