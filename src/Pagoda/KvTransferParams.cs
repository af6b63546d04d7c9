namespace Pagoda;

/// <summary>
/// vLLM's kv_transfer_params: how a request takes part in disaggregated prefill. A prefill request on a producer
/// sets <see cref="DoRemoteDecode"/> (its prompt's KV blocks are kept for a consumer to pull); its final output
/// carries the params a consumer needs (<see cref="DoRemotePrefill"/> and the remote_* fields), which the decode
/// request passes on unchanged.
/// </summary>
public sealed record KvTransferParams
{
    /// <summary>The JSON keys there are, in vLLM's order (remote_num_tokens is Pagoda's).</summary>
    public static readonly string[] Fields =
    [
        "do_remote_decode", "do_remote_prefill", "remote_engine_id", "remote_request_id", "remote_block_ids", "remote_host",
        "remote_port", "tp_size", "remote_num_tokens",
    ];

    /// <summary>A prefill request: keep the prompt's KV blocks after it finishes, for a decode instance to pull.</summary>
    public bool DoRemoteDecode { get; init; }

    /// <summary>A decode request: the prompt's KV is pulled from the producer named by the remote_* fields.</summary>
    public bool DoRemotePrefill { get; init; }

    /// <summary>The producer's engine id (its --kv-transfer-config engine_id).</summary>
    public string? RemoteEngineId { get; init; }

    /// <summary>The prefill request's id on the producer, under which its blocks are held.</summary>
    public string? RemoteRequestId { get; init; }

    /// <summary>The producer's blocks of the prompt, in order: block i holds positions i × block size onwards.</summary>
    public IReadOnlyList<int>? RemoteBlockIds { get; init; }

    /// <summary>Where the producer's KV transfer listener is.</summary>
    public string? RemoteHost { get; init; }

    /// <summary>The producer's KV transfer port.</summary>
    public int? RemotePort { get; init; }

    /// <summary>Tensor-parallel ranks of the producer (only 1 here).</summary>
    public int? TpSize { get; init; }

    /// <summary>The prompt length the producer computed: a decode request whose prompt differs is refused.</summary>
    public int? RemoteNumTokens { get; init; }

    /// <summary>Whether these params ask for anything (all false: an ordinary request).</summary>
    public bool IsActive => DoRemoteDecode || DoRemotePrefill;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent field.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException($"kv_transfer_params: {message}");
        }
        Check(!(DoRemoteDecode && DoRemotePrefill), "do_remote_decode and do_remote_prefill cannot both be true.");
        Check(TpSize is null or 1, $"tp_size {TpSize} is not supported (one rank per instance: 1).");
        if (!DoRemotePrefill)
            return;
        Check(!string.IsNullOrEmpty(RemoteEngineId), "do_remote_prefill needs remote_engine_id.");
        Check(!string.IsNullOrEmpty(RemoteRequestId), "do_remote_prefill needs remote_request_id.");
        Check(!string.IsNullOrEmpty(RemoteHost), "do_remote_prefill needs remote_host.");
        Check(RemotePort is >= 1 and <= 65535, "do_remote_prefill needs remote_port between 1 and 65535.");
        Check(RemoteBlockIds != null, "do_remote_prefill needs remote_block_ids.");
        Check(RemoteBlockIds!.All(b => b >= 0), "remote_block_ids must not be negative.");
        Check(RemoteNumTokens is null or >= 1, "remote_num_tokens must be positive.");
    }
}
