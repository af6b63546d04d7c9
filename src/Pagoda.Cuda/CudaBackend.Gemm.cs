using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Linear layers. Pagoda's fixed-order tensor-core GEMM (Kernels/gemm.cu) reduces an output element in one
/// order whatever the variant (K in chunks of <see cref="GemmChunk"/>, chunks added in order), so a row's
/// result does not depend on how many rows share the launch: with <see cref="BatchInvariant"/> every 16-bit
/// GEMM uses it and greedy outputs are the same alone or in any batch. Otherwise cuBLAS runs them (faster
/// on the H100 for every shape measured, docs/BENCHMARKS.md).
/// </summary>
public sealed unsafe partial class CudaBackend
{
    /// <summary>k per chunk of the fixed reduction order (GEMM_KC in gemm.cu).</summary>
    public const int GemmChunk = 256;

    private const int GemmCounterSlots = 1 << 16;
    private readonly DeviceMemory _gemmCounters; // per split tile: chunks finished; the last block resets it

    /// <summary>Every 16-bit GEMM on the fixed-order kernels (--batch-invariant).</summary>
    public bool BatchInvariant { get; set; }

    /// <summary>Forces one fixed-order variant (index into the kernel list; checks and benchmarks only).</summary>
    public int? GemmVariant { get; set; }

    private bool UsesFixedGemm(int n, int k) =>
        _k.Gemm[0] != 0 && k % 32 == 0 && (BatchInvariant || GemmVariant != null);

    private void FixedGemm(Tensor x, Tensor weight, Tensor? bias, Tensor dst, int n, int m, int k)
    {
        int chunks = (k + GemmChunk - 1) / GemmChunk;
        int variant = GemmVariant ?? ChooseGemm(n, m, chunks);
        if (variant <= 2 && n > 8 << variant)
            variant = ChooseGemm(n, m, chunks);
        CudaTensor? ws = null;
        uint gridX, gridY = 1, threads = 128, smem = 0;
        if (variant <= 2)
        {
            // Decode form: persistent blocks, one per SM, walking (64 rows, chunk) items; partials [tile, chunk, 64, n].
            int tiles = (m + 63) / 64;
            if (tiles > GemmCounterSlots)
                throw new NotSupportedException($"a GEMM of {m} outputs exceeds the fixed-order kernel's {GemmCounterSlots * 64}");
            gridX = (uint)Math.Min((long)tiles * chunks, _device.MultiprocessorCount);
            smem = GemvSmem(variant);
            EnsureDynamicSharedMemory(_k.Gemm, _gemmSmem, variant, smem);
            ws = RentFloats((long)tiles * chunks * 64 * n);
        }
        else
        {
            var (bm, bn, split) = variant switch { 3 => (64, 64, true), 4 => (64, 64, false), _ => (128, 128, false) };
            int tilesM = (m + bm - 1) / bm, tilesN = (n + bn - 1) / bn;
            if (split && (long)tilesM * tilesN > GemmCounterSlots)
                (variant, split) = (4, false);
            gridX = (uint)tilesM;
            gridY = (uint)tilesN;
            threads = bm == 128 ? 256u : 128u;
            if (split)
                ws = RentFloats((long)tilesM * tilesN * chunks * bm * bn);
        }
        _k.Launch(_k.Gemm[variant], "gemm", S, gridX, gridY, variant == 3 ? (uint)chunks : 1, threads, smem,
            P(x), P(weight), bias == null ? 0UL : P(bias), P(dst), ws?.Ptr ?? 0UL, _gemmCounters.Ptr, n, m, k);
        ws?.Dispose();
    }

    // (64 weight rows + 8·NT token rows) × padded 256-k rows × ring stages, as gemm.cu's GEMV_KERNEL lines.
    private uint GemvSmem(int variant) => (uint)((64 + (8 << variant)) * (GemmChunk + 32) * _elemSize * (variant == 2 ? 3 : 4));

    private CudaTensor RentFloats(long floats) => new(DType.F32, [checked((int)floats)], _pool.Rent(floats * 4), _pool);

    // Up to 32 tokens: the decode form, where its ring fits the GPU's shared memory (166-184 KB: not on GPUs
    // with ~100 KB per block). More: 128x128 tiles when they fill the GPU, else 64x64 tiles, split over chunks
    // when those are too few.
    private int ChooseGemm(int n, int m, int chunks)
    {
        int decode = n <= 8 ? 0 : n <= 16 ? 1 : n <= 32 ? 2 : -1;
        if (decode >= 0 && GemvSmem(decode) <= _device.MaxSharedMemoryPerBlock)
            return decode;
        int sms = _device.MultiprocessorCount;
        long tiles128 = (long)((m + 127) / 128) * ((n + 127) / 128);
        if (tiles128 >= sms) return 5;
        long tiles64 = (long)((m + 63) / 64) * ((n + 63) / 64);
        return tiles64 >= 2 * sms || chunks == 1 ? 4 : 3;
    }
}
