// ---- Fixed-order GEMM on tensor cores (16-bit T): dst[n, m] = Σ_k x[n, k]·w[m, k] (+ bias[m]) ----
// Batch invariance: an output element is reduced in one order whatever N, the tile shape or the launch
// form. K is cut into chunks of GEMM_KC; a chunk is one chain of mma.m16n8k16 products (k ascending, from
// zero) and the chunks' results are added to zero in chunk order. Every variant below walks exactly that
// order, so which one runs can depend on the shape freely:
//   split form: a block computes one chunk of one output tile and publishes it; the tile's last block adds
//               the chunks in order (many blocks even for one token: the decode GEMV);
//   full form:  a block walks every chunk of its tile and adds each as it completes (prefill, big batches).
// Within each 32-wide k step a lane loads 8 consecutive k of a row with one 16-byte load; the step's two
// mma take its (k 8t, 8t+1 | 8t+2, 8t+3) and (8t+4, 8t+5 | 8t+6, 8t+7) as the fragment's (2t, 2t+1 | 2t+8,
// 2t+9) pairs, for both operands, so each product still pairs w[m, k] with x[n, k].
#if defined(ELEM_BF16) || defined(ELEM_F16)
#define GEMM_KC 256

// The published chunk results of one element, added to zero in chunk order (loads issued four at a time).
__device__ __forceinline__ float fold_chunks(const float* p, long long step, int chunks)
{
    float sum = 0.f;
    int ch = 0;
    for (; ch + 4 <= chunks; ch += 4)
    {
        float a = __ldcg(p + ch * step), b = __ldcg(p + (ch + 1) * step), c = __ldcg(p + (ch + 2) * step), d = __ldcg(p + (ch + 3) * step);
        sum += a; sum += b; sum += c; sum += d;
    }
    for (; ch < chunks; ch++) sum += __ldcg(p + ch * step);
    return sum;
}

// Calls f(i, j, e, row, col) for every accumulator element of a warp's MT x NT fragments (row and col
// within the tile, from the lane's first row r0 and first column c0).
template <int MT, int NT, typename F>
__device__ __forceinline__ void each_fragment(const F& f, int r0, int c0)
{
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) f(i, j, e, r0 + i * 16 + (e >> 1) * 8, c0 + j * 8 + (e & 1));
}

template <int BM, int BN, int WM, int WN, int STAGES, bool SPLIT>
__device__ __forceinline__ void gemm_impl(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
    T* __restrict__ dst, float* __restrict__ ws, int* __restrict__ counters, int N, int M, int K)
{
    constexpr int THREADS = 32 * WM * WN, MT = BM / WM / 16, NT = BN / WN / 8;
    __shared__ __align__(16) T As[STAGES][BM * 32];   // [BM rows of w][32 k] per stage
    __shared__ __align__(16) T Bs[STAGES][BN * 32];   // [BN rows of x][32 k] per stage
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int rm = (warp % WM) * (BM / WM), cn = (warp / WM) * (BN / WN);
    const int kbeg = SPLIT ? blockIdx.z * GEMM_KC : 0;
    const int kend = SPLIT ? min(K, kbeg + GEMM_KC) : K;
    const int steps = (kend - kbeg) >> 5;

    auto load = [&](int slot, int k0) {
        for (int i = threadIdx.x; i < BM * 4; i += THREADS)
        {
            int r = i >> 2, c = i & 3, gm = m0 + r;
            cp_async16(&As[slot][r * 32 + c * 8], w + (long long)min(gm, M - 1) * K + k0 + c * 8, gm < M ? 16 : 0);
        }
        for (int i = threadIdx.x; i < BN * 4; i += THREADS)
        {
            int r = i >> 2, c = i & 3, gn = n0 + r;
            cp_async16(&Bs[slot][r * 32 + c * 8], x + (long long)min(gn, N - 1) * K + k0 + c * 8, gn < N ? 16 : 0);
        }
    };

    float chain[MT][NT][4], tot[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) chain[i][j][e] = tot[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++)
    {
        if (s < steps) load(s, kbeg + 32 * s);
        cp_async_commit();
    }
    for (int s = 0; s < steps; s++)
    {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        // Refill the slot every warp finished with in the previous step.
        if (s + STAGES - 1 < steps) load((s + STAGES - 1) % STAGES, kbeg + 32 * (s + STAGES - 1));
        cp_async_commit();
        const T* as = As[s % STAGES];
        const T* bs = Bs[s % STAGES];
        uint4 a[MT][2], b[NT];
#pragma unroll
        for (int i = 0; i < MT; i++)
        {
            a[i][0] = *(const uint4*)&as[(rm + i * 16 + g) * 32 + t * 8];
            a[i][1] = *(const uint4*)&as[(rm + i * 16 + g + 8) * 32 + t * 8];
        }
#pragma unroll
        for (int j = 0; j < NT; j++) b[j] = *(const uint4*)&bs[(cn + j * 8 + g) * 32 + t * 8];
#pragma unroll
        for (int i = 0; i < MT; i++)
        {
            unsigned lo[4] = {a[i][0].x, a[i][1].x, a[i][0].y, a[i][1].y};
            unsigned hi[4] = {a[i][0].z, a[i][1].z, a[i][0].w, a[i][1].w};
#pragma unroll
            for (int j = 0; j < NT; j++)
            {
                mma16816(chain[i][j], lo, b[j].x, b[j].y);
                mma16816(chain[i][j], hi, b[j].z, b[j].w);
            }
        }
        if (!SPLIT && ((32 * (s + 1)) % GEMM_KC == 0 || s == steps - 1))
        {
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int j = 0; j < NT; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) { tot[i][j][e] += chain[i][j][e]; chain[i][j][e] = 0.f; }
        }
    }
    cp_async_wait<0>();

    if (SPLIT)
    {
        // Publish this chunk; the tile's last block adds all chunks in order.
        const int chunks = gridDim.z, tile = blockIdx.x * gridDim.y + blockIdx.y;
        float* part = ws + (long long)tile * chunks * (BM * BN);
        each_fragment<MT, NT>([&](int i, int j, int e, int r, int c) {
            if (m0 + r < M && n0 + c < N) part[blockIdx.z * (BM * BN) + r * BN + c] = chain[i][j][e];
        }, rm + g, cn + 2 * t);
        if (!last_to_finish(counters + tile, chunks, chunks)) return;
        each_fragment<MT, NT>([&](int i, int j, int e, int r, int c) {
            if (m0 + r < M && n0 + c < N) tot[i][j][e] = fold_chunks(part + r * BN + c, BM * BN, chunks);
        }, rm + g, cn + 2 * t);
    }
    each_fragment<MT, NT>([&](int i, int j, int e, int r, int c) {
        int m = m0 + r, n = n0 + c;
        if (m < M && n < N) dst[(long long)n * M + m] = st(bias ? tot[i][j][e] + ld(bias[m]) : tot[i][j][e]);
    }, rm + g, cn + 2 * t);
}

// The decode form (at most 8·NT tokens), persistent: an item is one chunk of 64 rows (64 × 512 bytes of
// weights and the tokens' matching 512 bytes), items are numbered chunk-fastest, and each block (a few per
// SM at most) walks a contiguous run of them through a ring of STAGES shared-memory slots, so loads stream
// continuously while earlier items are multiplied. A slot holds rows padded to 576 bytes (fragment reads
// free of bank conflicts), loaded a row per warp instruction. Each item's result goes to the workspace;
// at its end a block counts the chunks it did per tile, and the block completing a tile adds its chunks in order.
#define GEMV_ROW (GEMM_KC + 32)   // padded smem row, in elements
template <int NT, int STAGES>
__device__ __forceinline__ void gemv_impl(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
    T* __restrict__ dst, float* __restrict__ ws, int* __restrict__ counters, int N, int M, int K)
{
    constexpr int ROWS = 64 + 8 * NT;
    extern __shared__ __align__(16) unsigned char gemv_smem[];
    const int chunks = (K + GEMM_KC - 1) / GEMM_KC, tiles = (M + 63) / 64;
    const long long items = (long long)tiles * chunks;
    const int first = (int)(items * blockIdx.x / gridDim.x), end = (int)(items * (blockIdx.x + 1) / gridDim.x);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;

    // Rows [r0, r1) of an item's slot: 0-63 are weights, 64.. the tokens.
    auto load = [&](int item, int r0, int r1) {
        T* slot = (T*)gemv_smem + (item % STAGES) * ROWS * GEMV_ROW;
        int c = item % chunks, m0 = item / chunks * 64, kbeg = c * GEMM_KC, seg = min(K - kbeg, GEMM_KC) >> 3;
        for (int r = r0 + warp; r < r1; r += 4)
        {
            bool isw = r < 64;
            int src = isw ? m0 + r : r - 64, rows = isw ? M : N;
            const T* base = isw ? w : x;
            bool ok = src < rows && lane < seg;
            cp_async16(slot + r * GEMV_ROW + lane * 8, base + (long long)min(src, rows - 1) * K + kbeg + min(lane, seg - 1) * 8,
                ok ? 16 : 0);
        }
    };
    auto issue = [&](int item) {
        if (item < end) load(item, 0, ROWS);
        cp_async_commit();
    };

    // The first items' weights stream in while the previous kernel finishes; the tokens only after it has.
    for (int s = 0; s < STAGES - 1; s++)
        if (first + s < end) load(first + s, 0, 64);
    PDL_ENTRY();
    for (int s = 0; s < STAGES - 1; s++)
        if (first + s < end) load(first + s, 64, ROWS);
    cp_async_commit();
    cp_async_wait<0>();
    for (int item = first; item < end; item++)
    {
        issue(item + STAGES - 1);
        cp_async_wait<STAGES - 1>();
        __syncthreads();
        const T* slot = (const T*)gemv_smem + (item % STAGES) * ROWS * GEMV_ROW;
        const int c = item % chunks, tile = item / chunks, m0 = tile * 64, klen = min(K - c * GEMM_KC, GEMM_KC);
        float acc[NT][4];
#pragma unroll
        for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
        const T* a0p = slot + (warp * 16 + g) * GEMV_ROW + t * 8;
        const T* a1p = a0p + 8 * GEMV_ROW;
        for (int s = 0; s < (klen >> 5); s++)
        {
            uint4 u = *(const uint4*)(a0p + s * 32), v = *(const uint4*)(a1p + s * 32);
            unsigned lo[4] = {u.x, v.x, u.y, v.y};
            unsigned hi[4] = {u.z, v.z, u.w, v.w};
#pragma unroll
            for (int j = 0; j < NT; j++)
            {
                uint4 b = *(const uint4*)(slot + (64 + j * 8 + g) * GEMV_ROW + s * 32 + t * 8);
                mma16816(acc[j], lo, b.x, b.y);
                mma16816(acc[j], hi, b.z, b.w);
            }
        }
        float* part = ws + (long long)tile * chunks * 64 * N;
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
            {
                int r = warp * 16 + g + (e >> 1) * 8, n = j * 8 + 2 * t + (e & 1);
                if (m0 + r < M && n < N) part[(c * 64 + r) * N + n] = acc[j][e];
            }
        // The barrier frees this slot for the next issue. (No fence here: it would wait for the loads in flight.)
        __syncthreads();
    }
    cp_async_wait<0>();
    // Publish once, then count each tile this block touched (64 at a time); the block completing a tile adds
    // its chunks in order, all such tiles at once across the threads.
    __threadfence();
    __syncthreads();
    if (first >= end) return;
    __shared__ unsigned char mine[64];
    for (int t0 = first / chunks; t0 <= (end - 1) / chunks; t0 += 64)
    {
        const int nt = min(64, (end - 1) / chunks - t0 + 1);
        if (threadIdx.x < nt)
        {
            int tile = t0 + threadIdx.x;
            int done = min(end, (tile + 1) * chunks) - max(first, tile * chunks);
            bool fin = atomicAdd(counters + tile, done) + done == chunks;
            if (fin) counters[tile] = 0;
            mine[threadIdx.x] = fin;
        }
        __syncthreads();
        __threadfence();
        for (int i = threadIdx.x; i < nt * 64 * N; i += blockDim.x)
        {
            int ti = i / (64 * N), rn = i - ti * 64 * N, r = rn / N, n = rn - r * N, tile = t0 + ti, m = tile * 64 + r;
            if (!mine[ti] || m >= M) continue;
            float sum = fold_chunks(ws + (long long)tile * chunks * 64 * N + r * N + n, 64LL * N, chunks);
            dst[(long long)n * M + m] = st(bias ? sum + ld(bias[m]) : sum);
        }
        __syncthreads();
    }
}
#define GEMV_KERNEL(NAME, NT, STAGES)                                                                             \
    extern "C" __global__ void __launch_bounds__(128) NAME(const T* x, const T* w, const T* bias, T* dst,          \
        float* ws, int* counters, int N, int M, int K)                                                             \
    {                                                                                                              \
        gemv_impl<NT, STAGES>(x, w, bias, dst, ws, counters, N, M, K);                                             \
    }
GEMV_KERNEL(gemv_n8, 1, 4)
GEMV_KERNEL(gemv_n16, 2, 4)
GEMV_KERNEL(gemv_n32, 4, 3)

// Name, tile (BM x BN), warps along M and N, pipeline stages, form. CudaBackend.FixedGemm picks one.
#define GEMM_KERNEL(NAME, BM, BN, WM, WN, STAGES, SPLIT)                                                          \
    extern "C" __global__ void __launch_bounds__(32 * WM * WN) NAME(const T* x, const T* w, const T* bias, T* dst,  \
        float* ws, int* counters, int N, int M, int K)                                                             \
    {                                                                                                              \
        PDL_ENTRY();                                                                                               \
        gemm_impl<BM, BN, WM, WN, STAGES, SPLIT>(x, w, bias, dst, ws, counters, N, M, K);                          \
    }
GEMM_KERNEL(gemm_split_n64, 64, 64, 2, 2, 4, true)
GEMM_KERNEL(gemm_full_n64, 64, 64, 2, 2, 4, false)
GEMM_KERNEL(gemm_full_n128, 128, 128, 2, 4, 3, false)
#endif
