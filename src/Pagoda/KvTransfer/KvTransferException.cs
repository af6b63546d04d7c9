namespace Pagoda.KvTransfer;

/// <summary>
/// A KV transfer that did not complete: the producer refused the pull (blocks released, unknown request, another
/// layout), could not be reached, or went away or stalled mid-transfer. The decode request it was for fails with it
/// (the server's 503) unless kv_load_failure_policy is recompute.
/// </summary>
public sealed class KvTransferException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The producer's refusal, when it refused (null when the transfer broke instead).</summary>
    public KvPullStatus? Status { get; init; }
}
