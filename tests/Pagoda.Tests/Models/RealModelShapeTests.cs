using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Models;

/// <summary>
/// Each real Hub config (tests/fixtures/configs) builds its model class at full size over recorded weights
/// (<see cref="RecordedWeights"/>: names and shapes, no tensors), and the model asks for exactly the checkpoint's
/// tensors: the names and shapes of the Hugging Face layout, written out here from the config, and a parameter
/// count equal to the published one. The weights are made in the dtype `--load-format dummy` would use.
/// </summary>
public class RealModelShapeTests
{
    // The published parameter counts: Mistral and Mixtral from their model.safetensors.index.json total_size (bfloat16:
    // 14496047104 and 93405585408 bytes), Qwen3-30B-A3B and gpt-oss-20b (the unquantized count of its MXFP4 tensors)
    // as their GGUF conversions report them.
    [Theory]
    [InlineData("mistral-7b-instruct-v0.3", 7_248_023_552L, 291)]
    [InlineData("mixtral-8x7b-instruct-v0.1", 46_702_792_704L, 995)]
    [InlineData("qwen3-30b-a3b", 30_532_122_624L, 18_867)]
    [InlineData("gpt-oss-20b", 20_914_757_184L, 411)]
    // The three below: the parameter counts the Hub's model pages round to 2.61B, 1.00B and 3.84B.
    [InlineData("gemma-2-2b-it", 2_614_341_888L, 288)]
    [InlineData("gemma-3-1b-it", 999_885_952L, 340)]
    [InlineData("phi-4-mini-instruct", 3_836_021_760L, 194)]
    // Llama 3.1 70B's shape (issue 22's tensor-parallel benchmark): 141,107,412,992 bytes in bfloat16 on the Hub.
    [InlineData("llama-3.1-70b-shape", 70_553_706_496L, 723)]
    public void ModelAsksForTheCheckpointsTensors(string name, long parameters, int tensors)
    {
        var config = ConfigReader.Read(Path.Combine(TestPaths.Fixtures, "configs", name, "config.json"));
        var dtype = config.DType ?? DType.BF16;   // LLMEngine's dummy dtype without --dtype
        var (created, recorded) = RecordedWeights.CreateStore(dtype);
        using var store = created;
        using var backend = new ShapeOnlyBackend();
        using var model = ModelRegistry.Create(config, store, backend);

        Assert.IsType(config.Moe != null ? typeof(MoeModel) : config.Gemma != null ? typeof(GemmaModel) : typeof(DecoderModel), model);
        var expected = HubLayout(config);
        var asked = recorded.Shapes;
        Assert.Empty(expected.Keys.Except(asked.Keys));   // nothing missing
        Assert.Empty(asked.Keys.Except(expected.Keys));   // nothing extra
        Assert.All(expected, e => Assert.True(e.Value.SequenceEqual(asked[e.Key]),
            $"{e.Key}: asked for [{string.Join(", ", asked[e.Key])}], expected [{string.Join(", ", e.Value)}]"));
        Assert.Equal(tensors, asked.Count);
        Assert.Equal(parameters, recorded.TotalElements);

        // Every tensor reached the backend, as asked for (whole, or in row parts adding up to it: Phi-3's fused q/k/v and
        // gate/up on a backend without stacked projections) and in the store's dtype (but Gemma's norms, made as 1 + w in
        // float32, and gpt-oss's sinks, which the model reads on the host into its attention spec), and the model counts
        // their bytes.
        static long Elements(int[] shape) => shape.Aggregate(1L, (a, b) => a * b);
        bool madeNorm(string name) => config.Gemma != null && name.EndsWith("norm.weight", StringComparison.Ordinal);
        var loaded = backend.Loaded.GroupBy(w => w.Name).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(asked.Keys.Where(k => !k.EndsWith(".self_attn.sinks", StringComparison.Ordinal)).Order(), loaded.Keys.Order());
        Assert.All(loaded, l => Assert.True(l.Value.Count == 1 ? l.Value[0].Shape.SequenceEqual(asked[l.Key])
            : l.Value.All(p => p.Shape[1] == asked[l.Key][1]) && l.Value.Sum(p => p.Shape[0]) == asked[l.Key][0], l.Key));
        Assert.All(backend.Loaded, w => Assert.True(w.DType == (madeNorm(w.Name) ? DType.F32 : dtype), w.Name));
        Assert.Equal(backend.Loaded.Sum(w => Elements(w.Shape) * DTypes.SizeOf(w.DType)), model.WeightBytes);
        Assert.Equal(config.NumKvHeads * config.HeadDim, model.KvWidth);
        if (config.Moe is { } moe)
        {
            Assert.Equal(config.NumLayers - moe.DenseLayers.Count, backend.Experts.Count);
            Assert.All(backend.Experts, e => Assert.Equal((moe.NumExperts, config.HiddenSize, moe.IntermediateSize, moe.StackedExperts),
                (e.NumExperts, e.HiddenSize, e.IntermediateSize, e.IsStacked)));
        }
    }

    // The tensors of a checkpoint of this config, as transformers names and shapes them (gpt-oss: the unquantized
    // layout, as transformers dequantizes the MXFP4 checkpoint).
    private static Dictionary<string, int[]> HubLayout(ModelConfig c)
    {
        int h = c.HiddenSize, q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim;
        var w = new Dictionary<string, int[]>
        {
            ["model.embed_tokens.weight"] = [c.VocabSize, h],
            ["model.norm.weight"] = [h],
        };
        if (!c.TieWordEmbeddings)
            w["lm_head.weight"] = [c.VocabSize, h];
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            w[p + "input_layernorm.weight"] = [h];
            w[p + "post_attention_layernorm.weight"] = [h];
            w[p + "self_attn.q_proj.weight"] = [q, h];
            w[p + "self_attn.k_proj.weight"] = [kv, h];
            w[p + "self_attn.v_proj.weight"] = [kv, h];
            w[p + "self_attn.o_proj.weight"] = [h, q];
            if (c.QkvBias)
                (w[p + "self_attn.q_proj.bias"], w[p + "self_attn.k_proj.bias"], w[p + "self_attn.v_proj.bias"]) = ([q], [kv], [kv]);
            if (c.OutputBias)
                w[p + "self_attn.o_proj.bias"] = [h];
            if (c.QkNorm)
                (w[p + "self_attn.q_norm.weight"], w[p + "self_attn.k_norm.weight"]) = ([c.HeadDim], [c.HeadDim]);
            int e = c.Moe?.NumExperts ?? 0, ff = c.Moe?.IntermediateSize ?? c.IntermediateSize;
            switch (c.Architecture)
            {
                case "Gemma2ForCausalLM" or "Gemma3ForCausalLM":
                    (w[p + "pre_feedforward_layernorm.weight"], w[p + "post_feedforward_layernorm.weight"]) = ([h], [h]);
                    (w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"], w[p + "mlp.down_proj.weight"]) = ([ff, h], [ff, h], [h, ff]);
                    break;
                case "Phi3ForCausalLM":
                    foreach (string x in new[] { "q_proj", "k_proj", "v_proj" })
                        w.Remove(p + $"self_attn.{x}.weight");
                    w[p + "self_attn.qkv_proj.weight"] = [q + 2 * kv, h];
                    (w[p + "mlp.gate_up_proj.weight"], w[p + "mlp.down_proj.weight"]) = ([2 * ff, h], [h, ff]);
                    break;
                case "MistralForCausalLM" or "LlamaForCausalLM":
                    (w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"], w[p + "mlp.down_proj.weight"]) = ([ff, h], [ff, h], [h, ff]);
                    break;
                case "MixtralForCausalLM":
                    w[p + "block_sparse_moe.gate.weight"] = [e, h];
                    for (int x = 0; x < e; x++)
                    {
                        string ex = $"{p}block_sparse_moe.experts.{x}.";
                        (w[ex + "w1.weight"], w[ex + "w3.weight"], w[ex + "w2.weight"]) = ([ff, h], [ff, h], [h, ff]);
                    }
                    break;
                case "Qwen3MoeForCausalLM":
                    w[p + "mlp.gate.weight"] = [e, h];
                    for (int x = 0; x < e; x++)
                    {
                        string ex = $"{p}mlp.experts.{x}.";
                        (w[ex + "gate_proj.weight"], w[ex + "up_proj.weight"], w[ex + "down_proj.weight"]) = ([ff, h], [ff, h], [h, ff]);
                    }
                    break;
                case "GptOssForCausalLM":
                    w[p + "self_attn.sinks"] = [c.NumHeads];
                    (w[p + "mlp.router.weight"], w[p + "mlp.router.bias"]) = ([e, h], [e]);
                    (w[p + "mlp.experts.gate_up_proj"], w[p + "mlp.experts.gate_up_proj_bias"]) = ([e, h, 2 * ff], [e, 2 * ff]);
                    (w[p + "mlp.experts.down_proj"], w[p + "mlp.experts.down_proj_bias"]) = ([e, ff, h], [e, h]);
                    break;
                default:
                    throw new ArgumentException(c.Architecture);
            }
        }
        return w;
    }
}

/// <summary>
/// Megatron's split of a real shape, rank by rank, over recorded weights (nothing made): Llama 3.1 70B's shape over 2, 4
/// and 8 ranks asks each rank for its share of q/k/v, gate/up and the vocabulary (rows), of o and down (columns), and
/// for the norms whole, so that the ranks' parameters add up to the model's with only the norms repeated.
/// </summary>
public class RealShapeShardTests
{
    // The collectives of a rank of a group the model is only built for: building never calls them.
    private sealed class BuildOnly(int rank, int size) : Pagoda.Distributed.ICommunicator
    {
        public Pagoda.Distributed.TensorParallelRank Rank { get; } = new(rank, size);

        public void AllReduce(Tensor x) => throw new InvalidOperationException("building a model runs no collective");

        public void GatherColumns(Tensor part, Tensor? dst) => throw new InvalidOperationException("building a model runs no collective");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void Llama70BShapeSplitsOverRanks(int size)
    {
        var config = ConfigReader.Read(Path.Combine(TestPaths.Fixtures, "configs", "llama-3.1-70b-shape", "config.json"));
        long sum = 0;
        for (int rank = 0; rank < size; rank++)
        {
            var (created, _) = RecordedWeights.CreateStore(DType.BF16);
            using var store = created;
            using var backend = new ShapeOnlyBackend();
            using var model = ModelRegistry.Create(config, store, backend, comm: new BuildOnly(rank, size));
            var shapes = backend.Loaded.GroupBy(w => w.Name).ToDictionary(g => g.Key, g => g.Single().Shape);
            int q = 8192 / size, kv = 1024 / size, ff = 28672 / size, vocab = 128256 / size;
            Assert.Equal([vocab, 8192], shapes["model.embed_tokens.weight"]);
            Assert.Equal([vocab, 8192], shapes["lm_head.weight"]);
            Assert.Equal([8192], shapes["model.norm.weight"]);
            foreach (int layer in new[] { 0, 79 })
            {
                string p = $"model.layers.{layer}.";
                Assert.Equal([q, 8192], shapes[p + "self_attn.q_proj.weight"]);
                Assert.Equal([kv, 8192], shapes[p + "self_attn.k_proj.weight"]);
                Assert.Equal([kv, 8192], shapes[p + "self_attn.v_proj.weight"]);
                Assert.Equal([8192, q], shapes[p + "self_attn.o_proj.weight"]);
                Assert.Equal([ff, 8192], shapes[p + "mlp.gate_proj.weight"]);
                Assert.Equal([ff, 8192], shapes[p + "mlp.up_proj.weight"]);
                Assert.Equal([8192, ff], shapes[p + "mlp.down_proj.weight"]);
                Assert.Equal([8192], shapes[p + "input_layernorm.weight"]);
            }
            Assert.Equal(723, shapes.Count);
            Assert.Equal(kv, model.KvWidth);
            sum += backend.Loaded.Sum(w => w.Shape.Aggregate(1L, (a, b) => a * b));
        }
        long norms = (80 * 2 + 1) * 8192L;
        Assert.Equal(70_553_706_496L + (size - 1) * norms, sum);
    }
}
