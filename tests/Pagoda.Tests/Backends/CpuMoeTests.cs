using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Loading;
using Pagoda.Models;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Backends;

/// <summary>
/// The CPU's fused MoE op against a naive per-token double-precision reference (random bf16 weights, both
/// stored forms, each routing and activation), its batch invariance (a token's row is bit-identical alone, in
/// the batch and in a reordered batch), and that experts no token chose are never read.
/// </summary>
public unsafe class CpuMoeTests
{
    private const int NumExperts = 6, Hidden = 40, Ff = 24, TopK = 3, Tokens = 11;

    [Theory]
    [InlineData(false, MoeScoring.SoftmaxTopK, true, MoeActivation.SiluGated)]      // Qwen3-MoE (norm_topk_prob), Mixtral
    [InlineData(false, MoeScoring.SoftmaxTopK, false, MoeActivation.SiluGated)]     // Qwen3-MoE without it
    [InlineData(true, MoeScoring.TopKSoftmax, false, MoeActivation.ClampedSwiglu)]  // gpt-oss
    public void MatchesNaiveReferenceAndIsBatchInvariant(bool stacked, MoeScoring scoring, bool renormalize, MoeActivation activation)
    {
        var rng = new Random(stacked ? 7 : renormalize ? 8 : 9);
        using var w = Weights.Random(rng, biases: stacked);
        // A small clamp so that gpt-oss's clamps actually bite on these magnitudes.
        var spec = new MoeSpec(TopK, scoring, renormalize, activation) { SwigluLimit = 0.6f };
        using var backend = new CpuBackend(new BackendOptions { BatchInvariant = true });
        using var experts = backend.PrepareExperts(w.Stored(stacked));
        var x = Random(rng, Tokens * Hidden);
        var logits = Random(rng, Tokens * NumExperts, 3);

        var batched = Run(backend, experts, spec, x, logits, Enumerable.Range(0, Tokens).ToArray());
        for (int t = 0; t < Tokens; t++)
        {
            var expected = w.Reference(x.AsSpan(t * Hidden, Hidden), logits.AsSpan(t * NumExperts, NumExperts), spec);
            for (int i = 0; i < Hidden; i++)
                Assert.True(Math.Abs(batched[t * Hidden + i] - expected[i]) <= 1e-5 * (1 + Math.Abs(expected[i])),
                    $"token {t} element {i}: {batched[t * Hidden + i]} vs {expected[i]}");
        }

        var reversed = Run(backend, experts, spec, x, logits, Enumerable.Range(0, Tokens).Reverse().ToArray());
        for (int t = 0; t < Tokens; t++)
        {
            var alone = Run(backend, experts, spec, x, logits, [t]);
            Assert.Equal(batched.AsSpan(t * Hidden, Hidden).ToArray(), alone);
            Assert.Equal(batched.AsSpan(t * Hidden, Hidden).ToArray(), reversed.AsSpan((Tokens - 1 - t) * Hidden, Hidden).ToArray());
        }
    }

    [Fact]
    public void ExpertsNoTokenChoseAreNeverRead()
    {
        var rng = new Random(3);
        using var w = Weights.Random(rng, biases: false);
        for (int j = 0; j < Ff; j++)
            w.Gate[0][j * Hidden] = float.NaN;
        var logits = Random(rng, Tokens * NumExperts);
        for (int t = 0; t < Tokens; t++)
            logits[t * NumExperts] = -100f;   // expert 0 is never in a top-k
        using var backend = new CpuBackend();
        using var experts = backend.PrepareExperts(w.Stored(stacked: false));
        var spec = new MoeSpec(TopK, MoeScoring.SoftmaxTopK, true, MoeActivation.SiluGated);
        var y = Run(backend, experts, spec, Random(rng, Tokens * Hidden), logits, Enumerable.Range(0, Tokens).ToArray());
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void ABackendWithoutMoeOpsRefusesMoeModelsClearly()
    {
        string folder = TestPaths.Model("tiny-mixtral");
        var config = ModelFolder.Open(folder).Config;
        using var store = WeightStore.Open(folder);
        using var cpu = new CpuBackend();
        var e = Assert.Throws<NotSupportedException>(() => ModelRegistry.Create(config, store, new OpsOnly(cpu)));
        Assert.Contains("mixture-of-experts", e.Message);
    }

    // The op over the given tokens (rows of x and logits), in that order; returns [tokens.Length, hidden].
    private static float[] Run(CpuBackend backend, MoeExperts experts, MoeSpec spec, float[] x, float[] logits, int[] tokens)
    {
        using var xs = CpuTensor.Allocate([tokens.Length, Hidden]);
        using var ls = CpuTensor.Allocate([tokens.Length, NumExperts]);
        using var dst = CpuTensor.Allocate([tokens.Length, Hidden]);
        for (int i = 0; i < tokens.Length; i++)
        {
            x.AsSpan(tokens[i] * Hidden, Hidden).CopyTo(xs.Row(i));
            logits.AsSpan(tokens[i] * NumExperts, NumExperts).CopyTo(ls.Row(i));
        }
        backend.FusedMoe(xs, ls, experts, spec, dst);
        return dst.F32.ToArray();
    }

    private static float[] Random(Random rng, int n, double scale = 1) =>
        Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    private static float Bf16(float v) => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) & unchecked((int)0xFFFF0000));

    // Logical expert weights, bf16-exact: Gate[e], Up[e] [ff, hidden] and Down[e] [hidden, ff] row-major, biases [ff], [ff], [hidden].
    private sealed record Weights(float[][] Gate, float[][] Up, float[][] Down, float[][]? GateBias, float[][]? UpBias, float[][]? DownBias)
        : IDisposable
    {
        private readonly List<CpuTensor> _tensors = [];

        public static Weights Random(Random rng, bool biases)
        {
            float[][] Make(int n) => Enumerable.Range(0, NumExperts).Select(_ => CpuMoeTests.Random(rng, n, 0.5).Select(Bf16).ToArray()).ToArray();
            return new Weights(Make(Ff * Hidden), Make(Ff * Hidden), Make(Hidden * Ff),
                biases ? Make(Ff) : null, biases ? Make(Ff) : null, biases ? Make(Hidden) : null);
        }

        // The checkpoint's layout: per-expert [out, in] tensors, or gpt-oss's [E, in, out] stacks with gate/up interleaved.
        public MoeExpertWeights Stored(bool stacked)
        {
            var stored = new MoeExpertWeights(NumExperts, Hidden, Ff);
            if (!stacked)
                return stored with { Gate = Gate.Select(g => Tensor([Ff, Hidden], g)).ToArray(), Up = Up.Select(u => Tensor([Ff, Hidden], u)).ToArray(),
                    Down = Down.Select(d => Tensor([Hidden, Ff], d)).ToArray() };
            var gateUp = new float[NumExperts * Hidden * 2 * Ff];
            var down = new float[NumExperts * Ff * Hidden];
            for (int e = 0; e < NumExperts; e++)
            {
                for (int i = 0; i < Hidden; i++)
                {
                    for (int j = 0; j < Ff; j++)
                    {
                        gateUp[(e * Hidden + i) * 2 * Ff + 2 * j] = Gate[e][j * Hidden + i];
                        gateUp[(e * Hidden + i) * 2 * Ff + 2 * j + 1] = Up[e][j * Hidden + i];
                        down[(e * Ff + j) * Hidden + i] = Down[e][i * Ff + j];
                    }
                }
            }
            var gateUpBias = Enumerable.Range(0, NumExperts).SelectMany(e => Enumerable.Range(0, 2 * Ff).Select(c => c % 2 == 0 ? GateBias![e][c / 2] : UpBias![e][c / 2])).ToArray();
            return stored with
            {
                GateUp = Tensor([NumExperts, Hidden, 2 * Ff], gateUp), DownStacked = Tensor([NumExperts, Ff, Hidden], down),
                GateUpBias = Tensor([NumExperts, 2 * Ff], gateUpBias), DownBias = Tensor([NumExperts, Hidden], DownBias!.SelectMany(b => b).ToArray()),
            };
        }

        private CpuTensor Tensor(int[] shape, float[] values)
        {
            var t = CpuTensor.AllocateStored(DType.BF16, shape);
            for (int i = 0; i < values.Length; i++)
                ((ushort*)t.Pointer)[i] = (ushort)(BitConverter.SingleToInt32Bits(values[i]) >>> 16);
            _tensors.Add(t);
            return t;
        }

        // One token, every step in double: route, run each chosen expert, weight and sum.
        public double[] Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> logits, MoeSpec spec)
        {
            var scores = logits.ToArray().Select(v => (double)v).ToArray();
            if (spec.Scoring == MoeScoring.SoftmaxTopK)
                scores = Softmax(scores);
            var chosen = Enumerable.Range(0, NumExperts).OrderByDescending(e => scores[e]).Take(spec.TopK).ToArray();
            var weights = chosen.Select(e => scores[e]).ToArray();
            if (spec.Scoring == MoeScoring.TopKSoftmax)
                weights = Softmax(weights);
            if (spec.Renormalize)
                weights = weights.Select(v => v / weights.Sum()).ToArray();
            var y = new double[Hidden];
            for (int r = 0; r < chosen.Length; r++)
            {
                int e = chosen[r];
                var act = new double[Ff];
                for (int j = 0; j < Ff; j++)
                {
                    double g = GateBias?[e][j] ?? 0, u = UpBias?[e][j] ?? 0;
                    for (int i = 0; i < Hidden; i++)
                    {
                        g += x[i] * (double)Gate[e][j * Hidden + i];
                        u += x[i] * (double)Up[e][j * Hidden + i];
                    }
                    if (spec.Activation == MoeActivation.SiluGated)
                    {
                        act[j] = g / (1 + Math.Exp(-g)) * u;
                    }
                    else
                    {
                        g = Math.Min(g, spec.SwigluLimit);
                        u = Math.Clamp(u, -spec.SwigluLimit, spec.SwigluLimit);
                        act[j] = (u + 1) * g / (1 + Math.Exp(-g * spec.SwigluAlpha));
                    }
                }
                for (int i = 0; i < Hidden; i++)
                {
                    double d = DownBias?[e][i] ?? 0;
                    for (int j = 0; j < Ff; j++)
                        d += act[j] * Down[e][i * Ff + j];
                    y[i] += weights[r] * d;
                }
            }
            return y;
        }

        public void Dispose()
        {
            foreach (var t in _tensors)
                t.Dispose();
        }

        private static double[] Softmax(double[] v)
        {
            var exp = v.Select(s => Math.Exp(s - v.Max())).ToArray();
            return exp.Select(s => s / exp.Sum()).ToArray();
        }
    }
}
