namespace Pagoda;

/// <summary>How an embedding is pooled from the final hidden states of a prompt (vLLM's pooling_type).</summary>
public enum PoolingType
{
    /// <summary>The last token's hidden state (decoder embedding models).</summary>
    Last,

    /// <summary>The mean over every prompt token.</summary>
    Mean,
}
