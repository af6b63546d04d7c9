using System.Diagnostics;
using Pagoda.Backends;
using Pagoda.Execution;
using Pagoda.Loading;
using Pagoda.Loading.Hub;
using Pagoda.Models;
using Pagoda.Requests;
using Pagoda.Scheduling;
using Pagoda.SpecDecode;

namespace Pagoda.Engine;

/// <summary>Speculative decoding in the engine loop (`--speculative-config`): drafts proposed once a step is recorded.</summary>
public sealed partial class LLMEngine
{
    private readonly SpecDecoder? _spec;

    /// <summary>Speculative decoding's counters (null without `--speculative-config`).</summary>
    public SpecDecodingStats? SpecDecodingStats => _spec?.Stats;

    private readonly DraftModel? _draft;

    // A draft model's folder (a path or repo id, fetched like the target's), checked against the target and loaded on its
    // backend in the target's dtype and load format; null for n-gram.
    private static (IModel Model, WeightStore Weights)? LoadDraft(EngineArgs args, IBackend backend, ModelConfig target, int maxModelLen)
    {
        if (args.SpeculativeConfig is not { UsesDraftModel: true } spec)
            return null;
        var folder = ModelFolder.Open(ModelResolver.Resolve(spec.Model!, spec.Revision, args.DownloadDir, args.Hub ?? HubSettings.FromEnvironment(), args.DownloadProgress));
        var c = folder.Config;
        if (c.VocabSize != target.VocabSize)
            throw new ArgumentException($"--speculative-config: the draft model's vocabulary ({c.VocabSize} tokens) is not the target's ({target.VocabSize}); a draft shares the target's tokenizer.");
        if (c.MaxPositionEmbeddings < maxModelLen)
            throw new ArgumentException($"--speculative-config: the draft model's max_position_embeddings ({c.MaxPositionEmbeddings}) is below --max-model-len {maxModelLen}.");
        var weights = args.LoadFormat == "dummy"
            ? WeightStore.CreateDummy(folder.Path, DTypes.ParseTorch(args.DType) ?? c.DType ?? DType.BF16)
            : WeightStore.Open(folder.Path, args.LoadFormat);
        try
        {
            return (ModelRegistry.Create(c, weights, backend, args.Quantization, maxModelLen), weights);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    // The loaded draft over a pool of the target's block count, or a refusal (which disposes it).
    private DraftModel CreateDraft(EngineArgs args, IBackendProvider? provider, IModel draftModel, WeightStore draftWeights)
    {
        // Blocks behind the target's window are released: a draft may only read within a window as short.
        int draftWindow = KvCacheSlidingWindow(draftModel.Config, MaxModelLen);
        if ((KvCacheInfo.SlidingWindow > 0 && (draftWindow == 0 || draftWindow > KvCacheInfo.SlidingWindow)) || args.KvTransferConfig != null)
        {
            draftModel.Dispose();
            draftWeights.Dispose();
            throw new ArgumentException("--speculative-config: a draft model must slide within the target's sliding window (the target's KV blocks behind it are released), and KV transfers carry the target's KV only.");
        }
        var draftCache = _backend.AllocateKvCache(draftModel.Config.NumLayers, KvCacheInfo.NumBlocks, args.BlockSize, draftModel.KvWidth);
        // CUDA graphs for the draft's one-token forwards, as for the target's decode (it verifies nothing: no verification graphs).
        return new DraftModel(provider?.Prepare(draftModel, _backend, draftCache, ExecutionShape.Of(args with { SpeculativeConfig = null }, MaxModelLen)) ?? draftModel, draftCache, draftWeights,
            deviceGreedy: _backend is IDeviceSampler { MaxCandidates: > 0 });
    }

    // The drafts the next step verifies, for each request that sampled in this one and runs on. A draft model runs only
    // for the requests given drafts, first catching up on their tokens since it last ran (DraftModel's watermark); a
    // throw there fails the step's requests.
    private void ProposeDrafts(SchedulerOutput recorded, ModelRunnerOutput run, LaunchedStep launched)
    {
        if (_spec == null)
            return;
        var sampled = new List<Request>(recorded.Scheduled.Count);
        foreach (var s in recorded.Scheduled)
        {
            if (s.Request.Status == RequestStatus.Running && run.SampledTokens.ContainsKey(s.Request.RequestId))
                sampled.Add(s.Request);
        }
        var wanted = sampled.Count > 0 ? _spec.Propose(sampled, _scheduler.NumRunning) : [];
        if (_draft == null || launched.Batch is not { } batch)
            return;
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            _draft.Step(batch, launched.Scheduled.Select(s => s.Request).ToList(), wanted);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach (var s in launched.Scheduled)
                Fail(s.Request.RequestId, e);
        }
        _spec.RecordDraftForwards(wanted.Count == 0 ? 0 : wanted.Max(w => w.NumDrafts), Stopwatch.GetElapsedTime(t0).TotalSeconds);
    }
}
