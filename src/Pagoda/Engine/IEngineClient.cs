namespace Pagoda.Engine;

/// <summary>
/// What a server asks of the engine (vLLM's EngineClient): one <see cref="AsyncLLMEngine"/>, or data-parallel replicas
/// behind one (<see cref="DataParallelEngine"/>).
/// </summary>
public interface IEngineClient : IDisposable
{
    /// <summary>The (first) replica's engine: tokenizer, chat template, config and request checks, the same in every replica.</summary>
    LLMEngine Engine { get; }

    /// <summary>Each replica, in rank order (one for a single engine).</summary>
    IReadOnlyList<AsyncLLMEngine> Replicas { get; }

    /// <summary>The load of all replicas together, as of their last steps.</summary>
    EngineStats Stats { get; }

    /// <summary>Requests not yet running, over all replicas.</summary>
    int NumWaiting { get; }

    /// <summary>Why a replica's loop stopped, if one did (the server then reports itself unhealthy).</summary>
    Exception? Failure { get; }

    /// <summary>Adds a request and streams its outputs (see <see cref="AsyncLLMEngine.GenerateAsync"/>).</summary>
    IAsyncEnumerable<RequestOutput> GenerateAsync(string requestId, PromptInput prompt, SamplingParams samplingParams,
        CancellationToken cancellationToken = default);

    /// <summary>Embeds a prompt (see <see cref="AsyncLLMEngine.EmbedAsync"/>).</summary>
    Task<float[]> EmbedAsync(string requestId, PromptInput prompt, PoolingType pooling, CancellationToken cancellationToken = default);

    /// <summary>Empties every replica's prefix cache; false if a replica had blocks in use.</summary>
    Task<bool> ResetPrefixCacheAsync(CancellationToken cancellationToken = default);
}
