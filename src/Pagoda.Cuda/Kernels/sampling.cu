// Top-k candidates of logits rows on the device, so that sampling needs only k values per row on the
// host (k = 1 is greedy argmax). An entry's 64-bit key orders it as a stable descending sort would:
// the float's bits made monotone in the high word, the complemented id in the low word (lower id wins
// a tie). Keys are unique per row, so "the best key below the previous pick" walks the order.

typedef unsigned long long u64;

__device__ __forceinline__ u64 topk_key(float v, int id)
{
    unsigned b = __float_as_uint(v);
    b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return ((u64)b << 32) | (unsigned)(~id);
}

__device__ __forceinline__ float topk_value(u64 key)
{
    unsigned b = (unsigned)(key >> 32);
    b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
    return __uint_as_float(b);
}

__device__ __forceinline__ int topk_id(u64 key) { return (int)~(unsigned)key; }

__device__ __forceinline__ u64 warp_max_u64(u64 v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
    {
        u64 other = __shfl_xor_sync(0xffffffffu, v, o);
        v = other > v ? other : v;
    }
    return v;
}

// The block's largest key below `limit` among keys[0..n) (0 when none); every thread gets it.
__device__ u64 block_best_below(const u64* keys, int n, u64 limit)
{
    __shared__ u64 partial[32];
    __shared__ u64 best;
    u64 v = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        u64 k = keys[i];
        if (k < limit && k > v) v = k;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max_u64(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        u64 w = lane < warps ? partial[lane] : 0;
        w = warp_max_u64(w);
        if (lane == 0) best = w;
    }
    __syncthreads();
    u64 r = best;
    __syncthreads();
    return r;
}

#define TOPK_CHUNK 2048

// Stage 1: grid (chunks, rows). The k best keys of one chunk of a row -> part[row][chunk][0..k).
extern "C" __global__ void topk_chunks(const T* logits, u64* part, int vocab, int k)
{
    PDL_ENTRY();
    __shared__ u64 keys[TOPK_CHUNK];
    int chunk = blockIdx.x, row = blockIdx.y, chunks = gridDim.x;
    int start = chunk * TOPK_CHUNK;
    int n = min(TOPK_CHUNK, vocab - start);
    const T* x = logits + (long long)row * vocab + start;
    for (int i = threadIdx.x; i < n; i += blockDim.x) keys[i] = topk_key(ld(x[i]), start + i);
    __syncthreads();
    u64* out = part + ((long long)row * chunks + chunk) * k;
    u64 limit = ~0ull;
    for (int r = 0; r < k; r++)
    {
        limit = block_best_below(keys, n, limit);
        if (threadIdx.x == 0) out[r] = limit;
    }
}

// Stage 2: grid (rows). Merges a row's chunk candidates into its k best: dst[row][0..k) values,
// dst[row][k..2k) ids as floats (-1 past the row's end).
extern "C" __global__ void topk_merge(const u64* part, float* dst, int chunks, int k)
{
    PDL_ENTRY();
    int row = blockIdx.x;
    const u64* keys = part + (long long)row * chunks * k;
    float* out = dst + (long long)row * 2 * k;
    u64 limit = ~0ull;
    for (int r = 0; r < k; r++)
    {
        limit = block_best_below(keys, chunks * k, limit);
        if (threadIdx.x == 0)
        {
            out[r] = limit ? topk_value(limit) : NEG_INF;
            out[k + r] = limit ? (float)topk_id(limit) : -1.f;
        }
    }
}
