using System.Diagnostics;
using Pagoda.Backends;
using Pagoda.Cuda;
using Pagoda.Sampling;

namespace Pagoda.CudaCheck;

/// <summary>
/// What the device's sampling reduction costs by itself: <see cref="CudaBackend.ReduceToHost"/> over bf16 rows of
/// Qwen's vocabulary (151,936) at 64 and 256 rows, for what the engine plans for greedy requests, the model's
/// generation_config (top-k 20 from the candidates, repetition penalty over ~400 tokens a row), temperature 1 (a
/// whole-row draw), top-p 0.9 (the nucleus cut, then the draw) and greedy with logprobs 5. Medians of synchronous
/// calls (launches, kernels, the copy back); with --ncu a short bracketed range for `ncu --profile-from-start off`.
/// </summary>
public static class SamplingCost
{
    private const int Vocab = 151_936;

    /// <summary>Prints one line per (mode, rows).</summary>
    public static void Run(CudaDevice device, bool ncu, TextWriter log)
    {
        using var gpu = new CudaBackend(DType.BF16, device);
        var rng = new Random(11);
        foreach (int rows in new[] { 64, 256 })
        {
            var data = new float[rows * Vocab];
            for (int i = 0; i < data.Length; i++)
                data[i] = (float)(rng.NextDouble() * 8 - 4);   // a flat row, as dummy weights give: top-p keeps most of it
            using var t = gpu.Upload(data, rows, Vocab);
            foreach (var (name, make) in Modes())
            {
                var s = make(rows, rng);
                var dst = new float[rows * s.RowWidth];
                int iters = ncu ? 1 : 30;
                for (int i = 0; i < 3; i++)
                    gpu.ReduceToHost(t, s, dst);
                if (ncu)
                    gpu.ProfilerRange(true);
                var times = new double[iters];
                for (int i = 0; i < iters; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    gpu.ReduceToHost(t, s, dst);
                    times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                if (ncu)
                    gpu.ProfilerRange(false);
                Array.Sort(times);
                log.WriteLine($"sampling-cost {name,-34} rows {rows,3}: median {times[iters / 2]:F3} ms, min {times[0]:F3} ms");
            }
        }
    }

    private static (string, Func<int, Random, DeviceSamplingInputs>)[] Modes() =>
    [
        ("greedy (top-k 1 of the raw rows)", (rows, _) => DeviceSamplingInputs.TopK(rows, 1)),
        ("generation_config (k 20, rep 1.1)", (rows, rng) => Processed(rows, rng, 20, draw: false, topP: 1f, penalties: 400, logprobs: false)),
        ("T 1 (whole-row draw)", (rows, rng) => Processed(rows, rng, 1, draw: true, topP: 1f, penalties: 0, logprobs: false)),
        ("T 0.6, top-p 0.9 (nucleus, draw)", (rows, rng) => Processed(rows, rng, 1, draw: true, topP: 0.9f, penalties: 0, logprobs: false)),
        ("greedy, logprobs 5", (rows, rng) => Processed(rows, rng, 1, draw: false, topP: 1f, penalties: 0, logprobs: true)),
    ];

    private static DeviceSamplingInputs Processed(int rows, Random rng, int k, bool draw, float topP, int penalties, bool logprobs)
    {
        const int W = DeviceSamplingInputs.ParamWidth;
        var prm = new int[rows * W];
        var pairs = new List<int>();
        var penaltyOffsets = new int[rows + 1];
        for (int r = 0; r < rows; r++)
        {
            long u = BitConverter.DoubleToInt64Bits(Philox.Uniform(r, 1));
            prm[r * W] = BitConverter.SingleToInt32Bits(draw ? 1f / (topP < 1f ? 0.6f : 1f) : 1f / 0.7f);
            (prm[r * W + 1], prm[r * W + 2]) = ((int)u, (int)(u >> 32));
            prm[r * W + 3] = BitConverter.SingleToInt32Bits(penalties > 0 ? 1.1f : 1f);
            prm[r * W + 6] = (draw ? DeviceSamplingInputs.DrawFlag : 0) | (topP < 1f ? DeviceSamplingInputs.NucleusFlag : 0);
            prm[r * W + 8] = BitConverter.SingleToInt32Bits(topP);
            foreach (int id in Enumerable.Range(0, penalties * 2).Select(_ => rng.Next(Vocab)).Distinct().Take(penalties))
                pairs.AddRange([id, rng.Next(3)]);
            penaltyOffsets[r + 1] = pairs.Count / 2;
        }
        return new DeviceSamplingInputs(rows, k)
        {
            Processed = true, Logprobs = logprobs, Draws = draw, Cuts = draw && topP < 1f, Params = prm, EditOffsets = new int[rows + 1], PenaltyOffsets = penaltyOffsets,
            Penalties = pairs.ToArray(), MaskWords = (Vocab + 31) / 32,
        };
    }
}
