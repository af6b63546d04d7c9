using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Engine;

// What an engine (or a tensor-parallel worker) decides before it runs: the weights it opens and how its KV pool is sized.
public sealed partial class LLMEngine
{
    /// <summary>
    /// The window behind which the KV manager frees blocks: the model's sliding window when every attention layer
    /// slides (the largest, should they differ), 0 when any layer attends to all positions (Gemma 2/3, gpt-oss and
    /// other mixed models keep every block, as vLLM does without its hybrid allocator). A window of at least
    /// <paramref name="maxModelLen"/> never slides past a key of any request (Phi-3.5-mini's 262,144, or Mistral's 4,096
    /// at --max-model-len 4096), so it is full attention to the KV manager: 0.
    /// </summary>
    // It must equal the AttentionSpec.SlidingWindow the model gives every layer, or attention would read freed blocks.
    internal static int KvCacheSlidingWindow(ModelConfig config, int maxModelLen) =>
        config.SlidingWindow > 0 && config.SlidingWindow < maxModelLen && config.LayerTypes.Count == config.NumLayers
            && Enumerable.Range(0, config.NumLayers).All(config.IsSlidingLayer)
            ? config.SlidingWindow : 0;

    internal static KvCacheInfo SizeKvCache(EngineArgs args, int kvWidth, int numLayers, int maxModelLen, int? deviceBlocks, int slidingWindow = 0,
        double poolsPerBlock = 1)
    {
        // A draft model's pool has a block for each of the target's: poolsPerBlock scales a block's bytes to both.
        long bytesPerBlock = (long)(2.0 * numLayers * kvWidth * sizeof(float) * args.BlockSize * poolsPerBlock);
        int numBlocks = args.NumKvBlocks ?? deviceBlocks ?? (int)Math.Min(args.KvCacheMemory / bytesPerBlock, int.MaxValue / args.BlockSize);
        var info = new KvCacheInfo(numBlocks, args.BlockSize, maxModelLen) { SlidingWindow = slidingWindow, MaxNumBatchedTokens = args.MaxNumBatchedTokens };
        // One request of the full context length must always fit, or preemption could never make room.
        if (slidingWindow == 0 && info.NumTokens < maxModelLen)
            throw new ArgumentException(
                $"The KV cache holds {info.NumTokens} tokens ({numBlocks} blocks of {args.BlockSize}), fewer than --max-model-len {maxModelLen}. " +
                "Increase --kv-cache-memory (or --num-kv-blocks) or decrease --max-model-len.");
        // With a window a request holds only what its window and one step cover; block 0 is the null block.
        if (slidingWindow > 0 && numBlocks - 1 < info.MaxBlocksPerRequest)
            throw new ArgumentException(
                $"The KV cache has {numBlocks - 1} usable blocks of {args.BlockSize} (one more is the null block), fewer than the {info.MaxBlocksPerRequest} " +
                $"one request may hold with a sliding window of {slidingWindow} and --max-num-batched-tokens {args.MaxNumBatchedTokens}. " +
                "Increase --kv-cache-memory (or --num-kv-blocks) or decrease --max-num-batched-tokens or --max-model-len.");
        return info;
    }

    /// <summary>
    /// A folder's weights as <paramref name="loadFormat"/> says (dummy ones made in <paramref name="dtype"/>, else the
    /// config's), gpt-oss's MXFP4 experts decoded (every tensor-parallel rank opens its weights this way).
    /// </summary>
    internal static WeightStore OpenWeights(ModelFolder folder, string loadFormat, string dtype)
    {
        if (loadFormat == "dummy")
            return WeightStore.CreateDummy(folder.Path, DTypes.ParseTorch(dtype) ?? folder.Config.DType ?? DType.BF16);
        var weights = WeightStore.Open(folder.Path, loadFormat);
        try
        {
            if (IsMxfp4(folder.Config))
                weights.DecodeMxfp4();
            return weights;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private static bool IsMxfp4(ModelConfig config) =>
        config.QuantizationMethod is { } q && q.Equals("mxfp4", StringComparison.OrdinalIgnoreCase) && config.Architecture == "GptOssForCausalLM";
}
