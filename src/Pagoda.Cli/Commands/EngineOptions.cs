using System.CommandLine;
using Pagoda.Loading.Hub;

namespace Pagoda.Cli.Commands;

/// <summary>The engine flags shared by every command that loads a model (vLLM's names).</summary>
internal sealed class EngineOptions
{
    private readonly Option<string?> _model = new("--model") { Description = "Model folder or Hub repo id (default: the embedded fortune-chat model)." };
    private readonly Option<string?> _revision = new("--revision") { Description = "Branch, tag or commit of a repo id (default: main)." };
    private readonly Option<string?> _downloadDir = new("--download-dir") { Description = "Cache folder for downloaded models (default: HF_HUB_CACHE)." };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "Folder to load the tokenizer from (default: the model's)." };
    private readonly Option<int?> _maxModelLen = new("--max-model-len") { Description = "Longest prompt + output in tokens." };
    private readonly Option<int> _blockSize = new("--block-size") { Description = "Tokens per KV cache block.", DefaultValueFactory = _ => 16 };
    private readonly Option<string> _generationConfig = new("--generation-config")
    {
        Description = "'auto': sampling defaults from generation_config.json; 'vllm': ignore it; or a folder holding one.",
        DefaultValueFactory = _ => "auto",
    };
    private readonly Option<string?> _chatTemplate = new("--chat-template") { Description = "Chat template file (or template text) overriding the model's." };
    private readonly Option<string> _device = new("--device")
    {
        Description = "Where to run: auto (an NVIDIA GPU when one is usable, else the CPU), cpu or cuda.",
        DefaultValueFactory = _ => "auto",
    };
    private readonly Option<string> _dtype = new("--dtype")
    {
        Description = "Model dtype: auto (the model's), float32, bfloat16 or float16 (GPU compute dtype; the CPU computes in float32; dummy weights are made in it).",
        DefaultValueFactory = _ => "auto",
    };
    private readonly Option<double?> _gpuMemoryUtilization = new("--gpu-memory-utilization") { Description = "Fraction of GPU memory to use (default 0.9)." };
    private readonly Option<bool> _enforceEager = new("--enforce-eager") { Description = "Do not capture CUDA graphs for decode." };
    private readonly Option<bool> _batchInvariant = new("--batch-invariant")
    {
        Description = "Outputs identical whatever the batch (GPU: fixed-order GEMMs everywhere, slower for large batches; CPU: decode in the prefill GEMM's order, slower decode).",
    };
    private readonly Option<string> _loadFormat = new("--load-format")
    {
        Description = "auto, safetensors, pt, or dummy (random weights of the config's shapes, for benchmarks).",
        DefaultValueFactory = _ => "auto",
    };
    private readonly Option<string?> _quantization = new("--quantization", "-q") { Description = "int8: weight-only int8 (per output channel) made at load time." };
    private readonly Option<bool> _skipTokenizerInit = new("--skip-tokenizer-init") { Description = "Load no tokenizer: prompts are token ids, outputs ids only." };
    private readonly Option<long?> _kvCacheMemory = new("--kv-cache-memory") { Description = "Bytes for the KV cache on the CPU (default 4 GiB)." };
    private readonly Option<int?> _numKvBlocks = new("--num-kv-blocks", "--num-gpu-blocks-override") { Description = "Fix the KV pool size in blocks." };
    private readonly Option<bool> _enablePrefixCaching = new("--enable-prefix-caching") { Description = "Reuse cached prompt prefixes (default on)." };
    private readonly Option<bool> _noPrefixCaching = new("--no-enable-prefix-caching") { Description = "Turn prefix caching off." };
    private readonly Option<int?> _maxNumBatchedTokens = new("--max-num-batched-tokens") { Description = "Token budget of one step (default 2048)." };
    private readonly Option<int?> _maxNumSeqs = new("--max-num-seqs") { Description = "Requests running at once (default 256)." };
    private readonly Option<string?> _reasoningParser = new("--reasoning-parser") { Description = "Reasoning model: qwen3 or deepseek_r1 (<think> text into reasoning_content; structured outputs start after it)." };
    private readonly Option<string?> _kvEventsConfig = new("--kv-events-config")
    {
        Description = "Publish KV cache events over ZMQ as vLLM does, for KV-aware routers: JSON such as "
            + "'{\"enable_kv_cache_events\": true, \"endpoint\": \"tcp://*:5557\", \"replay_endpoint\": \"tcp://*:5558\", \"topic\": \"kv\"}'.",
    };
    private readonly Option<string?> _kvTransferConfig = new("--kv-transfer-config")
    {
        Description = "Disaggregated prefill, as vLLM's: JSON such as '{\"kv_connector\": \"PagodaConnector\", \"kv_role\": \"kv_producer\", "
            + "\"kv_ip\": \"10.0.0.5\", \"kv_port\": 14579}' (roles kv_producer, kv_consumer, kv_both; kv_load_failure_policy fail or recompute; "
            + "kv_connector_extra_config: abort_request_timeout, transfer_timeout in seconds).",
    };
    private readonly Option<string?> _speculativeConfig = new("--speculative-config")
    {
        Description = "Speculative decoding, as vLLM's: JSON such as '{\"method\": \"ngram\", \"num_speculative_tokens\": 3, \"prompt_lookup_max\": 4}' "
            + "(prompt_lookup_min, disable_by_batch_size) or '{\"model\": \"DRAFT_DIR_OR_REPO\", \"num_speculative_tokens\": 3}'.",
    };
    private readonly Option<long?> _seed;
    // vLLM flags that deployment charts pass: accepted where they ask for what Pagoda already does.
    private readonly Option<int> _tensorParallel = new("--tensor-parallel-size", "-tp")
    {
        Description = "Ranks one model is split over (worker processes on this host, or over --nnodes; the CPU backend only yet).", DefaultValueFactory = _ => 1,
    };
    // vLLM's multi-node flags: node 0 runs the engine and rank 0 listens at the master address; the others run
    // `serve --headless` with their node rank.
    private readonly Option<int> _nnodes = new("--nnodes") { Description = "Nodes the tensor-parallel group spans (ranks meet over TCP when more than 1).", DefaultValueFactory = _ => 1 };
    private readonly Option<int> _nodeRank = new("--node-rank") { Description = "This node's rank among --nnodes (above 0: with --headless).", DefaultValueFactory = _ => 0 };
    private readonly Option<string?> _masterAddr = new("--master-addr") { Description = "Rank 0's address for a multi-node group (default 127.0.0.1)." };
    private readonly Option<int?> _masterPort = new("--master-port") { Description = "Rank 0's port for a multi-node group (default 29501)." };
    private readonly Option<bool> _headless = new("--headless") { Description = "Serve nothing: run this node's tensor-parallel ranks for node 0's engine (serve only)." };
    private readonly Option<int> _dataParallel = new("--data-parallel-size", "-dp") { Description = "Engine replicas behind the server, each with the whole model (replica r on GPU r; on the CPU, a share of the threads).", DefaultValueFactory = _ => 1 };
    private readonly Option<bool> _chunkedPrefill = new("--enable-chunked-prefill") { Description = "Accepted for vLLM compatibility: prefill is always chunked." };
    private readonly Option<bool> _trustRemoteCode = new("--trust-remote-code") { Description = "Accepted for vLLM compatibility: Pagoda never runs code from a model repository." };

    /// <param name="seedFlag">`--engine-seed` where `--seed` is a sampling flag (generate), `--seed` for serve as in vLLM.</param>
    public EngineOptions(string seedFlag = "--engine-seed") =>
        _seed = new(seedFlag) { Description = "Seed of the engine's generator (requests without a seed draw from it)." };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { _model, _revision, _downloadDir, _tokenizer, _maxModelLen, _blockSize, _generationConfig, _chatTemplate, _device, _dtype, _gpuMemoryUtilization, _enforceEager, _batchInvariant, _loadFormat, _quantization, _skipTokenizerInit,
                     _kvCacheMemory, _numKvBlocks, _enablePrefixCaching, _noPrefixCaching, _maxNumBatchedTokens, _maxNumSeqs, _seed, _reasoningParser, _kvEventsConfig, _kvTransferConfig, _speculativeConfig,
                     _tensorParallel, _dataParallel, _chunkedPrefill, _trustRemoteCode, _nnodes, _nodeRank, _masterAddr, _masterPort, _headless })
            cmd.Add(o);
    }

    /// <summary>Whether `--headless` was given (serve runs this node's ranks instead of an engine).</summary>
    public bool Headless(ParseResult r) => r.GetValue(_headless);

    public EngineArgs Bind(ParseResult r, HubSettings hub, IProgress<DownloadProgress>? progress, string? model = null, bool allowHeadless = false) =>
        r.GetValue(_headless) && !allowHeadless ? throw new ArgumentException("--headless runs a node's tensor-parallel ranks under `pagoda serve` only.")
        : BindArgs(r, hub, progress, model);

    private EngineArgs BindArgs(ParseResult r, HubSettings hub, IProgress<DownloadProgress>? progress, string? model) => new EngineArgs() with
    {
        Model = model ?? r.GetValue(_model) ?? EngineArgs.DefaultModel,
        Revision = r.GetValue(_revision),
        DownloadDir = r.GetValue(_downloadDir),
        Hub = hub,
        DownloadProgress = progress,
        Tokenizer = r.GetValue(_tokenizer),
        MaxModelLen = r.GetValue(_maxModelLen),
        BlockSize = r.GetValue(_blockSize),
        GenerationConfig = r.GetValue(_generationConfig)!,
        ChatTemplate = r.GetValue(_chatTemplate),
        Device = r.GetValue(_device)!,
        BackendProviders = [Pagoda.Cuda.CudaProvider.Instance],
        DType = r.GetValue(_dtype)!,
        GpuMemoryUtilization = r.GetValue(_gpuMemoryUtilization) ?? new EngineArgs().GpuMemoryUtilization,
        EnforceEager = r.GetValue(_enforceEager),
        BatchInvariant = r.GetValue(_batchInvariant),
        LoadFormat = r.GetValue(_loadFormat)!,
        Quantization = r.GetValue(_quantization),
        SkipTokenizerInit = r.GetValue(_skipTokenizerInit),
        KvCacheMemory = r.GetValue(_kvCacheMemory) ?? new EngineArgs().KvCacheMemory,
        NumKvBlocks = r.GetValue(_numKvBlocks),
        EnablePrefixCaching = !r.GetValue(_noPrefixCaching),
        MaxNumBatchedTokens = r.GetValue(_maxNumBatchedTokens) ?? new EngineArgs().MaxNumBatchedTokens,
        MaxNumSeqs = r.GetValue(_maxNumSeqs) ?? new EngineArgs().MaxNumSeqs,
        Seed = r.GetValue(_seed) ?? 0,
        ReasoningParser = r.GetValue(_reasoningParser),
        KvEventsConfig = r.GetValue(_kvEventsConfig) is { } kvEvents ? Pagoda.KvEvents.KvEventsConfig.Parse(kvEvents) : null,
        KvTransferConfig = r.GetValue(_kvTransferConfig) is { } kvTransfer ? Pagoda.KvTransfer.KvTransferConfig.Parse(kvTransfer) : null,
        SpeculativeConfig = r.GetValue(_speculativeConfig) is { } spec ? Pagoda.SpecDecode.SpeculativeConfig.Parse(spec) : null,
        DataParallelSize = r.GetValue(_dataParallel),
        TensorParallelSize = r.GetValue(_tensorParallel),
        Nnodes = r.GetValue(_nnodes),
        NodeRank = r.GetValue(_nodeRank),
        MasterAddr = r.GetValue(_masterAddr) ?? new EngineArgs().MasterAddr,
        MasterPort = r.GetValue(_masterPort) ?? new EngineArgs().MasterPort,
    };
}
