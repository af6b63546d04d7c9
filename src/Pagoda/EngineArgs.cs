using Pagoda.Backends;
using Pagoda.Engine;
using Pagoda.Execution;
using Pagoda.KvEvents;
using Pagoda.KvTransfer;
using Pagoda.Loading.Hub;
using Pagoda.SpecDecode;

namespace Pagoda;

/// <summary>
/// Every engine option as one validated record; the CLI (and later the server) bind to it. Names
/// follow vLLM's engine arguments.
/// </summary>
public sealed record EngineArgs
{
    /// <summary>The embedded default model, shipped beside the program.</summary>
    public static string DefaultModel => Path.Combine(AppContext.BaseDirectory, "models", "fortune-chat");

    /// <summary>Model folder, or a Hugging Face Hub / ModelScope repo id (downloaded into the shared cache).</summary>
    public string Model { get; init; } = DefaultModel;

    /// <summary>Branch, tag or commit hash of a repo id (default: main; master on ModelScope).</summary>
    public string? Revision { get; init; }

    /// <summary>Cache folder for downloads instead of HF_HUB_CACHE (vLLM's --download-dir).</summary>
    public string? DownloadDir { get; init; }

    /// <summary>Hub endpoint, cache, token and offline settings (default: read from the environment).</summary>
    public HubSettings? Hub { get; init; }

    /// <summary>Receives download progress when a repo id has to be fetched.</summary>
    public IProgress<DownloadProgress>? DownloadProgress { get; init; }

    /// <summary>Folder to read the tokenizer from (default: the model folder).</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Longest prompt + output in tokens (default: the model's max_position_embeddings).</summary>
    public int? MaxModelLen { get; init; }

    /// <summary>Tokens per KV block.</summary>
    public int BlockSize { get; init; } = 16;

    /// <summary>Bytes for the KV pool on the CPU (vLLM's VLLM_CPU_KVCACHE_SPACE, default 4 GiB).</summary>
    public long KvCacheMemory { get; init; } = 4L << 30;

    /// <summary>Fixes the pool size in blocks, overriding <see cref="KvCacheMemory"/> (vLLM's --num-gpu-blocks-override).</summary>
    public int? NumKvBlocks { get; init; }

    /// <summary>Reuse the KV of cached prompt prefixes.</summary>
    public bool EnablePrefixCaching { get; init; } = true;

    /// <summary>Tokens one step may compute; longer prompts are prefilled in chunks.</summary>
    public int MaxNumBatchedTokens { get; init; } = 2048;

    /// <summary>Requests that may run at once.</summary>
    public int MaxNumSeqs { get; init; } = 256;

    /// <summary>Seed of the engine's generator, which seeds requests that bring no seed.</summary>
    public long Seed { get; init; }

    /// <summary>`auto` applies generation_config.json's sampling defaults; `vllm` ignores them; else a folder.</summary>
    public string GenerationConfig { get; init; } = "auto";

    /// <summary>A chat template file (or template text) overriding the model's.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>auto (safetensors, else .bin), safetensors, pt, or dummy (random weights from config.json alone).</summary>
    public string LoadFormat { get; init; } = "auto";

    /// <summary>Where to run: auto (a GPU when one is usable, else the CPU), cpu or cuda.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// Device backends outside the core library that <see cref="Device"/> may name or `auto` may pick (the
    /// CLI passes the CUDA one); the CPU backend is always there.
    /// </summary>
    public IReadOnlyList<IBackendProvider> BackendProviders { get; init; } = [];

    /// <summary>
    /// Model dtype: auto (the config's torch_dtype), float32, bfloat16 or float16. A GPU computes in it; the
    /// CPU computes in float32 with weights as stored; dummy weights are made in it.
    /// </summary>
    public string DType { get; init; } = "auto";

    /// <summary>Fraction of GPU memory the engine may use (weights, activations and the KV pool).</summary>
    public double GpuMemoryUtilization { get; init; } = 0.9;

    /// <summary>Run every step eagerly instead of replaying CUDA graphs for decode.</summary>
    public bool EnforceEager { get; init; }

    /// <summary>
    /// Make every output independent of the batch it runs in, bit for bit (vLLM's batch-invariant mode): on the
    /// GPU all 16-bit GEMMs use Pagoda's fixed-order kernels, slower than cuBLAS for large batches and prefill;
    /// on the CPU a lone decoding row's Linear ops use the 4-row GEMV that reduces in the prefill GEMM's order
    /// instead of the faster one-row-at-a-time GEMV (docs/BENCHMARKS.md has both costs). Off, a request's outputs may
    /// differ in the last bits between running alone and in a batch (greedy tokens almost always agree).
    /// </summary>
    public bool BatchInvariant { get; init; }

    /// <summary>
    /// Kernel switches: CPU threads and vector width, the CUDA kernel cache (null: <see cref="BackendOptions.FromEnvironment"/>).
    /// Batch invariance comes from <see cref="BatchInvariant"/>.
    /// </summary>
    public BackendOptions? Backend { get; init; }

    /// <summary>The backend options in force: <see cref="Backend"/> (or the environment's) with <see cref="BatchInvariant"/>.</summary>
    public BackendOptions ResolvedBackendOptions() => (Backend ?? BackendOptions.FromEnvironment()) with { BatchInvariant = BatchInvariant };

    /// <summary>Test-only: consulted per request inside each step to inject faults (null in production).</summary>
    public FaultHook? FaultHook { get; init; }

    /// <summary>null (weights as stored) or "int8": weight-only int8 made at load time, per output channel.</summary>
    public string? Quantization { get; init; }

    /// <summary>
    /// Load no tokenizer (vLLM's --skip-tokenizer-init): prompts must be token ids and outputs carry ids
    /// only (empty text). For config-only folders such as dummy-weight benchmarks.
    /// </summary>
    public bool SkipTokenizerInit { get; init; }

    /// <summary>
    /// vLLM's --reasoning-parser (qwen3, deepseek_r1): chat responses split &lt;think&gt; text into reasoning_content,
    /// and a structured output constrains only what follows the end of reasoning.
    /// </summary>
    public string? ReasoningParser { get; init; }

    /// <summary>
    /// vLLM's --kv-events-config: publish the prefix cache's changes (BlockStored, BlockRemoved, AllBlocksCleared)
    /// over ZMQ in vLLM's wire format, for KV-aware routers. Null: no events.
    /// </summary>
    public KvEventsConfig? KvEventsConfig { get; init; }

    /// <summary>
    /// vLLM's --kv-transfer-config: disaggregated prefill with PagodaConnector. A producer (kv_producer, kv_both) keeps
    /// the KV blocks of prefill requests (kv_transfer_params.do_remote_decode) for a consumer to pull over TCP; a
    /// consumer (kv_consumer, kv_both) pulls them for decode requests (do_remote_prefill). Null: no transfers.
    /// </summary>
    public KvTransferConfig? KvTransferConfig { get; init; }

    /// <summary>
    /// vLLM's --speculative-config: draft tokens proposed by prompt lookup (ngram) or a draft model and verified by the
    /// model in the next step, several tokens per step where they are accepted, the same output as without. Null: none.
    /// </summary>
    public SpeculativeConfig? SpeculativeConfig { get; init; }

    /// <summary>
    /// vLLM's --data-parallel-size: engine replicas behind one server (<see cref="Engine.DataParallelEngine"/>), each running
    /// the whole model (replica r on GPU r; on the CPU each takes its share of the threads). One <see cref="Engine.LLMEngine"/>
    /// is one replica: it refuses more than 1, and <see cref="Engine.DataParallelEngine.ForRank"/> gives each replica its own
    /// arguments (size 1, its rank).
    /// </summary>
    public int DataParallelSize { get; init; } = 1;

    /// <summary>
    /// Ranks one model is split over, Megatron-style (vLLM's --tensor-parallel-size): rank 0 is this process, the others
    /// are worker processes meeting it in shared memory on this host, or over TCP when the group spans
    /// <see cref="Nnodes"/> nodes. The CPU backend runs it (a rehearsal of the GPU form, which needs NCCL); every
    /// supported architecture can be split where its heads divide by the size.
    /// </summary>
    public int TensorParallelSize { get; init; } = 1;

    /// <summary>
    /// Nodes the tensor-parallel group spans (vLLM's --nnodes), each running size / nodes ranks: this engine is node 0
    /// (rank 0 and its node's workers); the others run `pagoda serve --headless` with their <see cref="NodeRank"/>.
    /// </summary>
    public int Nnodes { get; init; } = 1;

    /// <summary>Tensor-parallel ranks on each node: they share its cores, and node 0 starts all but rank 0 of them.</summary>
    public int RanksPerNode => TensorParallelSize / Nnodes;

    /// <summary>This node's place among <see cref="Nnodes"/> (0: the node that runs the engine; above 0 only headless).</summary>
    public int NodeRank { get; init; }

    /// <summary>Where rank 0 listens for the other nodes' ranks (vLLM's --master-addr; multi-node only).</summary>
    public string MasterAddr { get; init; } = "127.0.0.1";

    /// <summary>Rank 0's port for the other nodes' ranks (vLLM's --master-port; multi-node only).</summary>
    public int MasterPort { get; init; } = 29501;

    /// <summary>How long rank 0 waits for every rank of a multi-node group to join, and a rank for rank 0 to be up.</summary>
    public TimeSpan TensorParallelJoinTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The command that starts a tensor-parallel worker, before its own arguments (null: this program again with
    /// `tp-worker`, which the pagoda CLI answers; a program embedding the library names the CLI here).
    /// </summary>
    public IReadOnlyList<string>? WorkerCommand { get; init; }

    /// <summary>This replica's rank (0 alone): its GPU, and the offset of its KV-event and KV-transfer ports.</summary>
    public int DataParallelRank { get; init; }

    /// <summary>Receives the engine's warnings (such as dropped KV event batches); null: standard error.</summary>
    public Action<string>? Warn { get; init; }

    /// <summary>The reasoning parsers there are (the chat layer's ReasoningParser implements them).</summary>
    public static readonly string[] ReasoningParsers = ["qwen3", "deepseek_r1"];

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (DataParallelSize < 1 || DataParallelRank < 0)
            throw new ArgumentException($"--data-parallel-size must be at least 1 (rank {DataParallelRank} of {DataParallelSize}).");
        if (TensorParallelSize is < 1 or > Distributed.SharedMemoryGroup.MaxRanks)
            throw new ArgumentException($"--tensor-parallel-size must be between 1 and {Distributed.SharedMemoryGroup.MaxRanks}, got {TensorParallelSize}.");
        if (Nnodes < 1 || NodeRank < 0 || NodeRank >= Nnodes)
            throw new ArgumentException($"--node-rank must be between 0 and --nnodes - 1 (node {NodeRank} of {Nnodes}).");
        if (Nnodes > 1 && (TensorParallelSize < Nnodes || TensorParallelSize % Nnodes != 0))
            throw new ArgumentException($"--tensor-parallel-size {TensorParallelSize} does not split evenly over --nnodes {Nnodes}.");
        if (Nnodes > 1 && MasterPort is < 0 or > 65535)
            throw new ArgumentException($"--master-port must be a TCP port, got {MasterPort}.");
        if (TensorParallelSize > 1 && DataParallelSize > 1)
            throw new ArgumentException("--tensor-parallel-size with --data-parallel-size is not supported yet: run one or the other.");
        if (TensorParallelSize > 1 && KvTransferConfig != null)
            throw new ArgumentException("--kv-transfer-config is not supported with --tensor-parallel-size above 1 (each rank holds a share of every block).");
        if (BlockSize is < 1 or > 1024)
            throw new ArgumentException($"--block-size must be between 1 and 1024, got {BlockSize}.");
        if (KvCacheMemory < 1)
            throw new ArgumentException($"--kv-cache-memory must be positive, got {KvCacheMemory}.");
        if (NumKvBlocks is < 1)
            throw new ArgumentException($"--num-kv-blocks must be positive, got {NumKvBlocks}.");
        if (MaxNumBatchedTokens < 1)
            throw new ArgumentException($"--max-num-batched-tokens must be positive, got {MaxNumBatchedTokens}.");
        if (MaxNumSeqs < 1)
            throw new ArgumentException($"--max-num-seqs must be positive, got {MaxNumSeqs}.");
        if (MaxModelLen is < 1)
            throw new ArgumentException($"--max-model-len must be positive, got {MaxModelLen}.");
        if (LoadFormat is not ("auto" or "safetensors" or "pt" or "dummy"))
            throw new ArgumentException($"--load-format '{LoadFormat}' is not supported (supported: auto, safetensors, pt, dummy).");
        if (Device is not ("auto" or "cpu" or "cuda") && BackendProviders.All(p => p.Device != Device))
            throw new ArgumentException($"--device '{Device}' is not supported (supported: auto, cpu, cuda).");
        if (DType is not ("auto" or "float32" or "float" or "bfloat16" or "float16" or "half"))
            throw new ArgumentException($"--dtype '{DType}' is not supported (supported: auto, float32, bfloat16, float16).");
        if (GpuMemoryUtilization is not (> 0 and <= 1))
            throw new ArgumentException($"--gpu-memory-utilization must be in (0, 1], got {GpuMemoryUtilization}.");
        if (ReasoningParser != null && !ReasoningParsers.Contains(ReasoningParser))
            throw new ArgumentException($"--reasoning-parser '{ReasoningParser}' is not supported (supported: {string.Join(", ", ReasoningParsers)}).");
        if (Quantization is not (null or "int8"))
            throw new ArgumentException($"--quantization '{Quantization}' is not supported (supported: int8).");
        KvEventsConfig?.Validate();
        KvTransferConfig?.Validate();
        SpeculativeConfig?.Validate();
    }
}
