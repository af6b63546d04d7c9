// Paged attention (appended to kernels.cu by the compiler), FlashAttention-style and GQA-aware.
//
// Work unit: one block per (query tile, kv head[, split]). A query tile is 1..n consecutive tokens of one
// sequence; its rows are (token, q head of the kv head's group), so the group's q heads share each K/V
// tile that is loaded. Keys are walked in tiles of ATT_KEYS through the sequence's block table, each tile
// staged in shared memory; scores, the causal mask and an online softmax run in float32.
//
// Keys are grouped into splits of split_len (a multiple of ATT_KEYS that the host puts beside each tile:
// fixed by the engine's longest context in batch-invariant mode, else by the tile's own context). Each split starts its own online softmax; the splits are then merged in split order by
// merge(). Either one block walks all splits of its tile and merges as it goes (gridDim.z == 1, any
// batch), or gridDim.z blocks share a tile's splits (z, z + gridDim.z, ...; decode), write each split's
// partial result, and the last block to finish merges the partials in split order. Both paths do the
// same float operations in the same order for every row, and a row's result depends only on its own
// position and keys: not on the batch, the tile it shares, the number of blocks, or which path ran it.
//
// Threads: RG row groups x 16 lanes (RG = 16, or 8 for decode tiles of at most 8 rows). In the score phase lane = key group (keys lane + 16 j); in
// the P·V phase lane = dim group (dims lane * DPT ...). A row group owns RPT rows in both phases, so a
// row's softmax statistics stay in the registers of its 16 threads.

#define ATT_KEYS 64
#define ATT_PSTRIDE (ATT_KEYS + 4)
#define ATT_PPSTRIDE (ATT_KEYS / 2 + 4)

template <typename U> struct Vec8;
template <> struct Vec8<u16>
{
    static __device__ __forceinline__ void load(const u16* p, float* f)
    {
        uint4 v = *reinterpret_cast<const uint4*>(p);
        unsigned w[4] = { v.x, v.y, v.z, v.w };
#pragma unroll
        for (int i = 0; i < 4; i++) { f[2 * i] = ld((T)(w[i] & 0xffffu)); f[2 * i + 1] = ld((T)(w[i] >> 16)); }
    }
};
template <> struct Vec8<float>
{
    static __device__ __forceinline__ void load(const float* p, float* f)
    {
        float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
        f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
    }
};

// The score of key p for a query at qpos: q·k scaled, then Gemma 2's soft cap (cap·tanh(s / cap), cap 0 for
// none), and -inf outside the causal sliding window (qpos - window, qpos] (window 0: every key up to qpos).
__device__ __forceinline__ float att_score(float dot, int p, int qpos, float scale, int window, float softcap)
{
    if (p > qpos || (window > 0 && p <= qpos - window)) return NEG_INF;
    float v = dot * scale;
    return softcap > 0.f ? tanhf(v / softcap) * softcap : v;
}

// The first key a tile attends to, rounded down to a key tile: with a window, every key at or before the tile's
// first position - window is masked for all its rows. The key tiles and splits before it are skipped; a fully
// masked tile or split changes no bit of the result (see merge_scales), so skipping them keeps every row's bits.
__device__ __forceinline__ int first_key(int pos0, int window)
{
    return window > 0 ? max(0, pos0 - window + 1) / ATT_KEYS * ATT_KEYS : 0;
}

// The softmax denominator of a finished row: gpt-oss's sink logit of the row's q head (sinks null for none)
// joins it without a value, so the output is O / (L + exp(sink - M)).
__device__ __forceinline__ float att_denominator(float L, float M, const float* sinks, int head)
{
    return sinks ? L + expf(sinks[head] - M) : L;
}

// Folds one split's softmax statistics (m, l) into the running (M, L) and gives the scales of the running
// sum (a) and of the split's sum (b): O = acc * b + O * a. False (nothing changes) when the split has no
// key for this row. Every merge, in every kernel, goes through here, so they all round alike.
__device__ __forceinline__ bool merge_scales(float& M, float& L, float m, float l, float& a, float& b)
{
    if (m == NEG_INF) return false;
    float mn = fmaxf(M, m);
    a = M == NEG_INF ? 0.f : expf(M - mn);
    b = expf(m - mn);
    L = fmaf(l, b, L * a);
    M = mn;
    return true;
}

template <int DPT>
__device__ __forceinline__ void merge(float& M, float& L, float* O, float m, float l, const float* acc)
{
    float a, b;
    if (!merge_scales(M, L, m, l, a, b)) return;
#pragma unroll
    for (int e = 0; e < DPT; e++) O[e] = fmaf(acc[e], b, O[e] * a);
}

// Split mode: after publishing its partials, a block counts the splits it did into the tile's counter;
// true for the block whose count completes the tile (it merges; the counter is reset for the next launch).
__device__ __forceinline__ bool last_to_finish(int* counter, int nsplits, int zstep)
{
    __shared__ int last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0)
    {
        int done = (nsplits - (int)blockIdx.z + zstep - 1) / zstep;
        last = atomicAdd(counter, done) + done == nsplits;
        if (last) *counter = 0;
    }
    __syncthreads();
    if (last) __threadfence();
    return last;
}

// Asynchronous 16-byte copies global -> shared (src_bytes 0 writes zeros), so a tile's loads are all in
// flight at once and the next tile streams in while this one is computed.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes)
{
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(d), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

// Stages keys [kt, kt + ATT_KEYS) of one kv head into Ks / Vs; keys at or past kend become zeros (P is 0
// there, and 0 * garbage could be NaN). bt may be the global block table or a shared-memory copy; inlined
// with a constant hd the divisions fold.
__device__ __forceinline__ void stage_tile(T* Ks, T* Vs, const T* kc, const T* vc, const int* bt, int kt, int kend,
    int hd, int kstride, int kvw, int kvh, int block_size)
{
    const int cpr = hd * (int)sizeof(T) / 16;
    // Block sizes are powers of two in practice (16 by default): a shift then replaces the integer division,
    // a large share of this loop's instructions (it runs for every 16 bytes staged; ncu, run 34).
    const bool pow2 = (block_size & (block_size - 1)) == 0;
    const int shift = __ffs(block_size) - 1;
#pragma unroll 4
    for (int c = threadIdx.x; c < ATT_KEYS * cpr; c += blockDim.x)
    {
        int key = c / cpr, part = c - key * cpr, p = kt + key;
        long long off = 0;
        if (p < kend)
        {
            // The slot index fits 32 bits (pool blocks x block size); only the element offset needs 64.
            int blk = pow2 ? p >> shift : p / block_size;
            off = (long long)(bt[blk] * block_size + (p - blk * block_size)) * kvw + kvh * hd;
        }
        int bytes = p < kend ? 16 : 0;
        cp_async16(reinterpret_cast<uint4*>(Ks + key * kstride) + part, reinterpret_cast<const uint4*>(kc + off) + part, bytes);
        cp_async16(reinterpret_cast<uint4*>(Vs + key * kstride) + part, reinterpret_cast<const uint4*>(vc + off) + part, bytes);
    }
}

template <int RG, int RPT, int DPT>
__device__ void attention_impl(
    const T* q, const T* kc, const T* vc, T* out, float* part_acc, float* part_ml, int* counters, const int* tiles,
    const int* block_tables, int max_blocks, const int* positions, int num_heads, int num_kv_heads, int head_dim,
    int block_size, float scale, int max_splits, int nbuf, int window, float softcap, const float* sinks)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const int ROWS = RG * RPT;
    const int hd = head_dim, kstride = hd + 16 / (int)sizeof(T), tile_elems = ATT_KEYS * kstride;
    T* Qs = reinterpret_cast<T*>(smem);                         // [ROWS, hd]
    T* Ks = Qs + ROWS * hd;                                     // [nbuf][ATT_KEYS, kstride]
    T* Vs = Ks + nbuf * tile_elems;                             // [nbuf][ATT_KEYS, kstride]
    float* Ps = reinterpret_cast<float*>(Vs + nbuf * tile_elems); // [ROWS, ATT_PSTRIDE]

    const int t = threadIdx.x, rg = t >> 4, lane = t & 15;
    const unsigned half_mask = 0xffffu << (t & 16); // a row group is one half-warp: shuffles stay inside it
    const int seq = tiles[4 * blockIdx.x], tok0 = tiles[4 * blockIdx.x + 1], count = tiles[4 * blockIdx.x + 2];
    const int split_len = tiles[4 * blockIdx.x + 3];
    const int kvh = blockIdx.y, group = num_heads / num_kv_heads, rows = count * group;
    const int kvw = num_kv_heads * hd;
    const int nkeys = positions[tok0 + count - 1] + 1;
    const int nsplits = (nkeys + split_len - 1) / split_len;
    const int kfirst = first_key(positions[tok0], window), z0 = kfirst / split_len, ns = nsplits - z0;
    const bool split_mode = gridDim.z > 1;
    if (split_mode && (int)blockIdx.z >= ns) return;
    const int* bt = block_tables + (long long)seq * max_blocks;
    const int zstep = split_mode ? gridDim.z : 1;

    // This block's key tiles run split by split: z0 + z, z0 + z + zstep, ...; the first one starts loading now.
    int z = z0 + (split_mode ? blockIdx.z : 0), kt = max(z * split_len, kfirst);
    stage_tile(Ks, Vs, kc, vc, bt, kt, min(nkeys, (z + 1) * split_len), hd, kstride, kvw, kvh, block_size);
    cp_async_commit();

    for (int i = t; i < ROWS * hd; i += RG * 16)
    {
        int r = i / hd, d = i - r * hd;
        Qs[i] = r < rows ? q[((long long)(tok0 + r / group) * num_heads + kvh * group + r % group) * hd + d] : (T)0;
    }
    int rpos[RPT];
#pragma unroll
    for (int i = 0; i < RPT; i++)
    {
        int r = rg * RPT + i;
        rpos[i] = r < rows ? positions[tok0 + r / group] : -1;
    }
    const bool active = rg * RPT < rows;
    const int d0 = lane * DPT;

    float M[RPT], L[RPT], O[RPT][DPT];
    float m[RPT], l[RPT], acc[RPT][DPT];
#pragma unroll
    for (int i = 0; i < RPT; i++)
    {
        M[i] = NEG_INF; L[i] = 0.f; m[i] = NEG_INF; l[i] = 0.f;
#pragma unroll
        for (int e = 0; e < DPT; e++) { O[i][e] = 0.f; acc[i][e] = 0.f; }
    }

    for (int it = 0;; it++)
    {
        const int kend = min(nkeys, (z + 1) * split_len);
        int zn = z, ktn = kt + ATT_KEYS;
        if (ktn >= kend) { zn = z + zstep; ktn = zn * split_len; }
        const bool more = zn < nsplits;
        const int buf = nbuf == 2 ? (it & 1) : 0;
        if (nbuf == 2 && more)
        {
            stage_tile(Ks + (buf ^ 1) * tile_elems, Vs + (buf ^ 1) * tile_elems, kc, vc, bt, ktn, min(nkeys, (zn + 1) * split_len),
                hd, kstride, kvw, kvh, block_size);
            cp_async_commit();
            cp_async_wait<1>();
        }
        else
            cp_async_wait<0>();
        __syncthreads();
        const T* Kt = Ks + buf * tile_elems;
        const T* Vt = Vs + buf * tile_elems;

        // Scores of the RPT rows x 4 keys (lane + 16 j) of this thread, then the online softmax.
        float corr[RPT];
        if (active)
        {
            float s[RPT][4];
#pragma unroll
            for (int i = 0; i < RPT; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) s[i][j] = 0.f;
            for (int d = 0; d < hd; d += 8)
            {
                float kf[4][8];
#pragma unroll
                for (int j = 0; j < 4; j++) Vec8<T>::load(Kt + (lane + 16 * j) * kstride + d, kf[j]);
#pragma unroll
                for (int i = 0; i < RPT; i++)
                {
                    float qf[8];
                    Vec8<T>::load(Qs + (rg * RPT + i) * hd + d, qf);
#pragma unroll
                    for (int j = 0; j < 4; j++)
#pragma unroll
                        for (int e = 0; e < 8; e++) s[i][j] = fmaf(qf[e], kf[j][e], s[i][j]);
                }
            }
#pragma unroll
            for (int i = 0; i < RPT; i++)
            {
                float mx = NEG_INF;
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    int p = kt + lane + 16 * j;
                    s[i][j] = att_score(s[i][j], p, rpos[i], scale, window, softcap);
                    mx = fmaxf(mx, s[i][j]);
                }
#pragma unroll
                for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(half_mask, mx, o));
                float mn = fmaxf(m[i], mx);
                corr[i] = mn == NEG_INF ? 1.f : expf(m[i] - mn);
                float ps = 0.f;
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    float pv = s[i][j] == NEG_INF ? 0.f : expf(s[i][j] - mn);
                    Ps[(rg * RPT + i) * ATT_PSTRIDE + lane + 16 * j] = pv;
                    ps += pv;
                }
#pragma unroll
                for (int o = 8; o > 0; o >>= 1) ps += __shfl_xor_sync(half_mask, ps, o);
                l[i] = fmaf(l[i], corr[i], ps);
                m[i] = mn;
            }
        }
        __syncthreads();

        // acc = acc * corr + P · V over this tile's keys, in key order.
        if (active && d0 < hd)
        {
#pragma unroll
            for (int i = 0; i < RPT; i++)
#pragma unroll
                for (int e = 0; e < DPT; e++) acc[i][e] *= corr[i];
            int kn = min(ATT_KEYS, kend - kt);
            for (int k = 0; k < kn; k++)
            {
                float vf[DPT];
#pragma unroll
                for (int e = 0; e < DPT; e += 8) Vec8<T>::load(Vt + k * kstride + d0 + e, vf + e);
#pragma unroll
                for (int i = 0; i < RPT; i++)
                {
                    float pk = Ps[(rg * RPT + i) * ATT_PSTRIDE + k];
#pragma unroll
                    for (int e = 0; e < DPT; e++) acc[i][e] = fmaf(pk, vf[e], acc[i][e]);
                }
            }
        }
        __syncthreads(); // the buffers read above are refilled next

        if (zn != z || !more)
        {
            // Split z is complete: fold it in, or publish it as a partial for the tile's last block.
            if (!split_mode || ns == 1)
            {
#pragma unroll
                for (int i = 0; i < RPT; i++) merge<DPT>(M[i], L[i], O[i], m[i], l[i], acc[i]);
            }
            else
            {
                long long base = ((long long)(blockIdx.x * num_kv_heads + kvh) * max_splits + z) * rows;
#pragma unroll
                for (int i = 0; i < RPT; i++)
                {
                    int r = rg * RPT + i;
                    if (r >= rows || d0 >= hd) continue;
#pragma unroll
                    for (int e = 0; e < DPT; e++) part_acc[(base + r) * hd + d0 + e] = acc[i][e];
                    if (lane == 0) { part_ml[(base + r) * 2] = m[i]; part_ml[(base + r) * 2 + 1] = l[i]; }
                }
            }
#pragma unroll
            for (int i = 0; i < RPT; i++)
            {
                m[i] = NEG_INF; l[i] = 0.f;
#pragma unroll
                for (int e = 0; e < DPT; e++) acc[i][e] = 0.f;
            }
        }
        if (!more) break;
        if (nbuf == 1)
        {
            stage_tile(Ks, Vs, kc, vc, bt, ktn, min(nkeys, (zn + 1) * split_len), hd, kstride, kvw, kvh, block_size);
            cp_async_commit();
        }
        z = zn;
        kt = ktn;
    }

    if (split_mode && ns > 1)
    {
        // The block whose splits complete the tile's count merges every partial, in split order.
        if (!last_to_finish(counters + blockIdx.x * num_kv_heads + kvh, ns, zstep)) return;
        for (int sp = z0; sp < nsplits; sp++)
        {
            long long b = ((long long)(blockIdx.x * num_kv_heads + kvh) * max_splits + sp) * rows;
#pragma unroll
            for (int i = 0; i < RPT; i++)
            {
                int r = rg * RPT + i;
                if (r >= rows || d0 >= hd) continue;
                float pa[DPT];
#pragma unroll
                for (int e = 0; e < DPT; e++) pa[e] = __ldcg(part_acc + (b + r) * hd + d0 + e);
                merge<DPT>(M[i], L[i], O[i], __ldcg(part_ml + (b + r) * 2), __ldcg(part_ml + (b + r) * 2 + 1), pa);
            }
        }
    }

#pragma unroll
    for (int i = 0; i < RPT; i++)
    {
        int r = rg * RPT + i;
        if (r >= rows || d0 >= hd) continue;
        T* o = out + ((long long)(tok0 + r / group) * num_heads + kvh * group + r % group) * hd + d0;
        float den = att_denominator(L[i], M[i], sinks, kvh * group + r % group);
#pragma unroll
        for (int e = 0; e < DPT; e++) o[e] = st(O[i][e] / den); // the host keeps head_dim a multiple of DPT
    }
}

#define ATTENTION_KERNEL(NAME, RG, RPT, DPT)                                                                        \
    extern "C" __global__ void __launch_bounds__(RG * 16) NAME(                                                     \
        const T* q, const T* kc, const T* vc, T* out, float* part_acc, float* part_ml, int* counters, const int* tiles, \
        const int* block_tables, int max_blocks, const int* positions, int num_heads, int num_kv_heads, int head_dim,  \
        int block_size, float scale, int max_splits, int nbuf, int window, float softcap,                          \
        const float* sinks)                                                                                         \
    {                                                                                                               \
        PDL_ENTRY();                                                                                                \
        attention_impl<RG, RPT, DPT>(q, kc, vc, out, part_acc, part_ml, counters, tiles, block_tables, max_blocks,   \
            positions, num_heads, num_kv_heads, head_dim, block_size, scale, max_splits, nbuf, window,                \
            softcap, sinks);                                                                                        \
    }

// Rows per block = row groups x rows per group: 64 (prefill and mixed batches), 16 or 8 (decode tiles of one
// token: the group's q heads). d8 / d16: head_dim up to 128 / 256. Every variant does the same math per row.
ATTENTION_KERNEL(attention_g8_r1_d8, 8, 1, 8)
ATTENTION_KERNEL(attention_g8_r1_d16, 8, 1, 16)
ATTENTION_KERNEL(attention_g16_r1_d8, 16, 1, 8)
ATTENTION_KERNEL(attention_g16_r1_d16, 16, 1, 16)
ATTENTION_KERNEL(attention_g16_r4_d8, 16, 4, 8)
ATTENTION_KERNEL(attention_g16_r4_d16, 16, 4, 16)

#if defined(ELEM_BF16) || defined(ELEM_F16)
// ---- The same algorithm on tensor cores (16-bit element types, head_dim 64 or 128) ----
// Each warp owns 16 rows; S = Q·Kᵀ and O += P·V are mma.m16n8k16 products with float32 accumulators (P
// is rounded to T for the second product, as FlashAttention does). Splits, tiles, masking, the online
// softmax and the split merge are those of attention_impl, in fragment layout: a thread holds rows
// g = lane / 4 and g + 8 of its warp, columns 2 (lane % 4) and + 1 of every 8-wide n-tile. Per-row
// reductions run in the thread, then across the row's quad, in a fixed order; an mma's output element
// depends only on its own row, so a row's bits do not depend on the block's other rows.
#if defined(ELEM_BF16)
#define MMA_AB "bf16"
#else
#define MMA_AB "f16"
#endif

__device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." MMA_AB "." MMA_AB ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Two floats as one register of 16-bit values, lo in the low half: the same rounding as st(), in one instruction.
__device__ __forceinline__ unsigned pack2(float lo, float hi)
{
    unsigned d;
#if defined(ELEM_BF16) && __CUDA_ARCH__ >= 800
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
#elif defined(ELEM_F16)
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
#else
    d = (unsigned)st(lo) | ((unsigned)st(hi) << 16);
#endif
    return d;
}
__device__ __forceinline__ void ldsm_x2_trans(unsigned& r0, unsigned& r1, const T* p)
{
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(a));
}
__device__ __forceinline__ float quad_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

template <int HD>
__device__ void attention_mma_impl(
    const T* q, const T* kc, const T* vc, T* out, float* part_acc, float* part_ml, int* counters, const int* tiles,
    const int* block_tables, int max_blocks, const int* positions, int num_heads, int num_kv_heads, int head_dim,
    int block_size, float scale, int max_splits, int nbuf, int window, float softcap, const float* sinks)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const int KS = HD / 16, NT = HD / 8, kstride = HD + 8, tile_elems = ATT_KEYS * kstride;
    T* Ks = reinterpret_cast<T*>(smem);                         // [nbuf][ATT_KEYS, kstride]
    T* Vs = Ks + nbuf * tile_elems;                             // [nbuf][ATT_KEYS, kstride]
    int* bts = reinterpret_cast<int*>(Vs + nbuf * tile_elems);  // [blocks of the context]

    const int t = threadIdx.x, warp = t >> 5, lane = t & 31, g = lane >> 2, tig = lane & 3;
    const int seq = tiles[4 * blockIdx.x], tok0 = tiles[4 * blockIdx.x + 1], count = tiles[4 * blockIdx.x + 2];
    const int split_len = tiles[4 * blockIdx.x + 3];
    const int kvh = blockIdx.y, group = num_heads / num_kv_heads, rows = count * group;
    const int kvw = num_kv_heads * HD;
    const int nkeys = positions[tok0 + count - 1] + 1;
    const int nsplits = (nkeys + split_len - 1) / split_len;
    const int* bt = block_tables + (long long)seq * max_blocks;
    for (int i = t; i < (nkeys + block_size - 1) / block_size; i += blockDim.x) bts[i] = bt[i];
    __syncthreads();

    const int kfirst = first_key(positions[tok0], window);
    int z = kfirst / split_len, kt = kfirst;
    stage_tile(Ks, Vs, kc, vc, bts, kt, min(nkeys, (z + 1) * split_len), HD, kstride, kvw, kvh, block_size);
    cp_async_commit();

    // This thread's two rows (r0 = g, r1 = g + 8 of the warp) and their q fragments.
    int rr[2] = { warp * 16 + g, warp * 16 + g + 8 };
    int rpos[2];
    const T* qrow[2];
#pragma unroll
    for (int h = 0; h < 2; h++)
    {
        bool ok = rr[h] < rows;
        rpos[h] = ok ? positions[tok0 + rr[h] / group] : -1;
        qrow[h] = ok ? q + ((long long)(tok0 + rr[h] / group) * num_heads + kvh * group + rr[h] % group) * HD : nullptr;
    }
    unsigned qa[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ks++)
    {
        int c = ks * 16 + tig * 2;
        qa[ks][0] = qrow[0] ? *reinterpret_cast<const unsigned*>(qrow[0] + c) : 0u;
        qa[ks][1] = qrow[1] ? *reinterpret_cast<const unsigned*>(qrow[1] + c) : 0u;
        qa[ks][2] = qrow[0] ? *reinterpret_cast<const unsigned*>(qrow[0] + c + 8) : 0u;
        qa[ks][3] = qrow[1] ? *reinterpret_cast<const unsigned*>(qrow[1] + c + 8) : 0u;
    }
    const bool active = warp * 16 < rows;

    float M[2] = { NEG_INF, NEG_INF }, L[2] = { 0.f, 0.f }, m[2] = { NEG_INF, NEG_INF }, l[2] = { 0.f, 0.f };
    float O[NT][4], acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) { O[n][e] = 0.f; acc[n][e] = 0.f; }

    for (int it = 0;; it++)
    {
        const int kend = min(nkeys, (z + 1) * split_len);
        int zn = z, ktn = kt + ATT_KEYS;
        if (ktn >= kend) { zn = z + 1; ktn = zn * split_len; }
        const bool more = zn < nsplits;
        const int buf = nbuf == 2 ? (it & 1) : 0;
        if (nbuf == 2 && more)
        {
            stage_tile(Ks + (buf ^ 1) * tile_elems, Vs + (buf ^ 1) * tile_elems, kc, vc, bts, ktn, min(nkeys, (zn + 1) * split_len),
                HD, kstride, kvw, kvh, block_size);
            cp_async_commit();
            cp_async_wait<1>();
        }
        else
            cp_async_wait<0>();
        __syncthreads();
        const T* Kt = Ks + buf * tile_elems;
        const T* Vt = Vs + buf * tile_elems;

        if (active)
        {
            // S = Q·Kᵀ for the 64 keys: n-tile j holds keys j * 8 + 2 tig + {0, 1}.
            float sc[8][4];
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) sc[j][e] = 0.f;
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
#pragma unroll
                for (int j = 0; j < 8; j++)
                {
                    const T* kp = Kt + (j * 8 + g) * kstride + ks * 16 + tig * 2;
                    mma16816(sc[j], qa[ks], *reinterpret_cast<const unsigned*>(kp), *reinterpret_cast<const unsigned*>(kp + 8));
                }
            float corr[2];
#pragma unroll
            for (int h = 0; h < 2; h++)
            {
                float mx = NEG_INF;
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                    {
                        int p = kt + j * 8 + tig * 2 + e;
                        float& v = sc[j][2 * h + e];
                        v = att_score(v, p, rpos[h], scale, window, softcap);
                        mx = fmaxf(mx, v);
                    }
                mx = quad_max(mx);
                float mn = fmaxf(m[h], mx);
                corr[h] = mn == NEG_INF ? 1.f : expf(m[h] - mn);
                float ps = 0.f;
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                    {
                        float& v = sc[j][2 * h + e];
                        v = v == NEG_INF ? 0.f : expf(v - mn);
                        ps += v;
                    }
                ps = quad_sum(ps);
                l[h] = fmaf(l[h], corr[h], ps);
                m[h] = mn;
            }
            // acc = acc * corr + P · V, 16 keys per product, in key order.
#pragma unroll
            for (int n = 0; n < NT; n++)
            {
                acc[n][0] *= corr[0]; acc[n][1] *= corr[0];
                acc[n][2] *= corr[1]; acc[n][3] *= corr[1];
            }
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
            {
                unsigned pa[4] = { pack2(sc[2 * kk][0], sc[2 * kk][1]), pack2(sc[2 * kk][2], sc[2 * kk][3]),
                                   pack2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]), pack2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]) };
#pragma unroll
                for (int n = 0; n < NT; n++)
                {
                    unsigned b0, b1;
                    ldsm_x2_trans(b0, b1, Vt + (kk * 16 + (lane & 15)) * kstride + n * 8);
                    mma16816(acc[n], pa, b0, b1);
                }
            }
        }
        __syncthreads(); // the buffers read above are refilled next

        if (zn != z || !more)
        {
#pragma unroll
            for (int h = 0; h < 2; h++)
            {
                float a, b;
                if (!merge_scales(M[h], L[h], m[h], l[h], a, b)) continue;
#pragma unroll
                for (int n = 0; n < NT; n++)
                {
                    O[n][2 * h] = fmaf(acc[n][2 * h], b, O[n][2 * h] * a);
                    O[n][2 * h + 1] = fmaf(acc[n][2 * h + 1], b, O[n][2 * h + 1] * a);
                }
            }
            m[0] = m[1] = NEG_INF;
            l[0] = l[1] = 0.f;
#pragma unroll
            for (int n = 0; n < NT; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
        }
        if (!more) break;
        if (nbuf == 1)
        {
            stage_tile(Ks, Vs, kc, vc, bts, ktn, min(nkeys, (zn + 1) * split_len), HD, kstride, kvw, kvh, block_size);
            cp_async_commit();
        }
        z = zn;
        kt = ktn;
    }

#pragma unroll
    for (int h = 0; h < 2; h++)
    {
        if (rr[h] >= rows) continue;
        T* o = out + ((long long)(tok0 + rr[h] / group) * num_heads + kvh * group + rr[h] % group) * HD + tig * 2;
        float den = att_denominator(L[h], M[h], sinks, kvh * group + rr[h] % group);
#pragma unroll
        for (int n = 0; n < NT; n++) { o[n * 8] = st(O[n][2 * h] / den); o[n * 8 + 1] = st(O[n][2 * h + 1] / den); }
    }
}


// One split's partial result for rows g and g + 8 of a decode tile: (m, l, then this thread's 2 NW
// accumulator columns) per row; rows past the tile are left alone.
template <int NW>
__device__ __forceinline__ void load_partial(const float* part_acc, const float* part_ml, long long b, int rows, int g,
    int col, int hd, float (&v)[2][2 + 2 * NW])
{
#pragma unroll
    for (int h = 0; h < 2; h++)
    {
        int r = g + 8 * h;
        if (r >= rows) continue;
        v[h][0] = __ldcg(part_ml + (b + r) * 2);
        v[h][1] = __ldcg(part_ml + (b + r) * 2 + 1);
        const float* pa = part_acc + (b + r) * hd + col;
#pragma unroll
        for (int n = 0; n < NW; n++) { v[h][2 + 2 * n] = __ldcg(pa + n * 8); v[h][3 + 2 * n] = __ldcg(pa + n * 8 + 1); }
    }
}

// Decode form (one-token tiles of at most 16 rows, several blocks per tile's splits). The prefill form
// leaves 3 of its 4 warps idle here, so the work of a tile is spread instead, with every value computed
// by the same operations as there: warp w makes the scores of keys 16w..16w+15 (n-tiles 2w, 2w+1), two
// warps run each row's softmax over the 64 scores exactly as a prefill thread would (same per-thread
// order, same quad reduction), and warp w makes output columns of its quarter of head_dim.
template <int HD>
__device__ void attention_mma_decode_impl(
    const T* q, const T* kc, const T* vc, T* out, float* part_acc, float* part_ml, int* counters, const int* tiles,
    const int* block_tables, int max_blocks, const int* positions, int num_heads, int num_kv_heads, int head_dim,
    int block_size, float scale, int max_splits, int nbuf, int window, float softcap, const float* sinks)
{
    extern __shared__ __align__(16) unsigned char smem[];
    constexpr int KS = HD / 16, NT = HD / 8, NW = NT / 4, kstride = HD + 8, tile_elems = ATT_KEYS * kstride;
    T* Ks = reinterpret_cast<T*>(smem);                         // [nbuf][ATT_KEYS, kstride]
    T* Vs = Ks + nbuf * tile_elems;                             // [nbuf][ATT_KEYS, kstride]
    float* Ps = reinterpret_cast<float*>(Vs + nbuf * tile_elems); // [16, ATT_PSTRIDE]: scores
    float* corr_s = Ps + 16 * ATT_PSTRIDE;                      // [16]
    float* l_s = corr_s + 16;                                   // [16]
    float* m_s = l_s + 16;                                      // [16]
    unsigned* Pp = reinterpret_cast<unsigned*>(m_s + 16);       // [16, ATT_PPSTRIDE]: P as 16-bit pairs
    int* bts = reinterpret_cast<int*>(Pp + 16 * ATT_PPSTRIDE);  // [blocks of the context]

    const int t = threadIdx.x, warp = t >> 5, lane = t & 31, g = lane >> 2, tig = lane & 3;
    const int seq = tiles[4 * blockIdx.x], tok0 = tiles[4 * blockIdx.x + 1], split_len = tiles[4 * blockIdx.x + 3];
    const int kvh = blockIdx.y, group = num_heads / num_kv_heads, rows = group; // one token per tile
    const int kvw = num_kv_heads * HD;
    const int pos = positions[tok0], nkeys = pos + 1;
    const int nsplits = (nkeys + split_len - 1) / split_len;
    const int kfirst = first_key(pos, window), z0 = kfirst / split_len, ns = nsplits - z0;
    if ((int)blockIdx.z >= ns) return;
    const int* bt = block_tables + (long long)seq * max_blocks;
    const int zstep = gridDim.z;
    for (int i = t; i < (nkeys + block_size - 1) / block_size; i += blockDim.x) bts[i] = bt[i];
    __syncthreads();

    int z = z0 + blockIdx.z, kt = max(z * split_len, kfirst);
    stage_tile(Ks, Vs, kc, vc, bts, kt, min(nkeys, (z + 1) * split_len), HD, kstride, kvw, kvh, block_size);
    cp_async_commit();

    // q fragments of rows g and g + 8 (the group's q heads; rows past the group are zeros).
    const T* qbase = q + ((long long)tok0 * num_heads + kvh * group) * HD;
    unsigned qa[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ks++)
    {
        int c = ks * 16 + tig * 2;
        qa[ks][0] = g < rows ? *reinterpret_cast<const unsigned*>(qbase + g * HD + c) : 0u;
        qa[ks][1] = g + 8 < rows ? *reinterpret_cast<const unsigned*>(qbase + (g + 8) * HD + c) : 0u;
        qa[ks][2] = g < rows ? *reinterpret_cast<const unsigned*>(qbase + g * HD + c + 8) : 0u;
        qa[ks][3] = g + 8 < rows ? *reinterpret_cast<const unsigned*>(qbase + (g + 8) * HD + c + 8) : 0u;
    }
    // Softmax threads (warps 0-1): row sr = 8 warp + g, quad lane tig; their m and l live in registers.
    const int sr = warp * 8 + g;
    const bool stats = warp < 2;
    const int srpos = stats && sr < rows ? pos : -1;
    float m = NEG_INF, l = 0.f;
    float acc[NW][4];
#pragma unroll
    for (int n = 0; n < NW; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[n][e] = 0.f;

    for (int it = 0;; it++)
    {
        const int kend = min(nkeys, (z + 1) * split_len);
        int zn = z, ktn = kt + ATT_KEYS;
        if (ktn >= kend) { zn = z + zstep; ktn = zn * split_len; }
        const bool more = zn < nsplits;
        const int buf = nbuf == 2 ? (it & 1) : 0;
        if (nbuf == 2 && more)
        {
            stage_tile(Ks + (buf ^ 1) * tile_elems, Vs + (buf ^ 1) * tile_elems, kc, vc, bts, ktn,
                min(nkeys, (zn + 1) * split_len), HD, kstride, kvw, kvh, block_size);
            cp_async_commit();
            cp_async_wait<1>();
        }
        else
            cp_async_wait<0>();
        __syncthreads();
        const T* Kt = Ks + buf * tile_elems;
        const T* Vt = Vs + buf * tile_elems;

        // Scores of this warp's 16 keys for the 16 rows.
#pragma unroll
        for (int jj = 0; jj < 2; jj++)
        {
            int j = 2 * warp + jj;
            float sc[4] = { 0.f, 0.f, 0.f, 0.f };
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
            {
                const T* kp = Kt + (j * 8 + g) * kstride + ks * 16 + tig * 2;
                mma16816(sc, qa[ks], *reinterpret_cast<const unsigned*>(kp), *reinterpret_cast<const unsigned*>(kp + 8));
            }
            Ps[g * ATT_PSTRIDE + j * 8 + tig * 2] = sc[0];
            Ps[g * ATT_PSTRIDE + j * 8 + tig * 2 + 1] = sc[1];
            Ps[(g + 8) * ATT_PSTRIDE + j * 8 + tig * 2] = sc[2];
            Ps[(g + 8) * ATT_PSTRIDE + j * 8 + tig * 2 + 1] = sc[3];
        }
        __syncthreads();

        // Online softmax of row sr over its 16 scores (keys j * 8 + 2 tig + e), as the prefill form does.
        if (stats)
        {
            const float* row = Ps + sr * ATT_PSTRIDE;
            float v[8][2];
            float mx = NEG_INF;
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    int p = kt + j * 8 + tig * 2 + e;
                    v[j][e] = att_score(row[j * 8 + tig * 2 + e], p, srpos, scale, window, softcap);
                    mx = fmaxf(mx, v[j][e]);
                }
            mx = quad_max(mx);
            float mn = fmaxf(m, mx);
            float corr = mn == NEG_INF ? 1.f : expf(m - mn);
            float ps = 0.f;
#pragma unroll
            for (int j = 0; j < 8; j++)
            {
                float pv[2];
#pragma unroll
                for (int e = 0; e < 2; e++)
                {
                    pv[e] = v[j][e] == NEG_INF ? 0.f : expf(v[j][e] - mn);
                    ps += pv[e];
                }
                // Keys j * 8 + 2 tig + {0, 1}: the pair the P·V fragments take, rounded once here for all warps.
                Pp[sr * ATT_PPSTRIDE + j * 4 + tig] = pack2(pv[0], pv[1]);
            }
            ps = quad_sum(ps);
            l = fmaf(l, corr, ps);
            m = mn;
            if (tig == 0) corr_s[sr] = corr;
        }
        __syncthreads();

        // acc = acc * corr + P · V for this warp's columns, 16 keys per product, in key order.
        {
            float c0 = corr_s[g], c1 = corr_s[g + 8];
#pragma unroll
            for (int n = 0; n < NW; n++) { acc[n][0] *= c0; acc[n][1] *= c0; acc[n][2] *= c1; acc[n][3] *= c1; }
#pragma unroll
            for (int kk = 0; kk < 4; kk++)
            {
                const unsigned* p0 = Pp + g * ATT_PPSTRIDE + kk * 8 + tig;
                const unsigned* p1 = Pp + (g + 8) * ATT_PPSTRIDE + kk * 8 + tig;
                unsigned pa[4] = { p0[0], p1[0], p0[4], p1[4] };
#pragma unroll
                for (int n = 0; n < NW; n++)
                {
                    unsigned b0, b1;
                    ldsm_x2_trans(b0, b1, Vt + (kk * 16 + (lane & 15)) * kstride + (warp * NW + n) * 8);
                    mma16816(acc[n], pa, b0, b1);
                }
            }
        }
        __syncthreads(); // Ps and the K/V buffer are rewritten next

        if (zn != z || !more)
        {
            if (ns == 1)
                break; // the only split: acc, m and l are the result
            long long base = ((long long)(blockIdx.x * num_kv_heads + kvh) * max_splits + z) * rows;
#pragma unroll
            for (int h = 0; h < 2; h++)
            {
                int r = g + 8 * h;
                if (r >= rows) continue;
                float* pa = part_acc + (base + r) * HD + warp * NW * 8 + tig * 2;
#pragma unroll
                for (int n = 0; n < NW; n++) { pa[n * 8] = acc[n][2 * h]; pa[n * 8 + 1] = acc[n][2 * h + 1]; }
            }
            if (stats && tig == 0 && sr < rows) { part_ml[(base + sr) * 2] = m; part_ml[(base + sr) * 2 + 1] = l; }
            m = NEG_INF;
            l = 0.f;
#pragma unroll
            for (int n = 0; n < NW; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
        }
        if (!more) break;
        if (nbuf == 1)
        {
            stage_tile(Ks, Vs, kc, vc, bts, ktn, min(nkeys, (zn + 1) * split_len), HD, kstride, kvw, kvh, block_size);
            cp_async_commit();
        }
        z = zn;
        kt = ktn;
    }

    float O[NW][4], L[2], M[2] = { NEG_INF, NEG_INF };
    if (ns == 1)
    {
        // Merging the only split into zeros changes no bit: the result is acc / l.
        if (stats && tig == 0) { l_s[sr] = l; m_s[sr] = m; }
        __syncthreads();
        L[0] = l_s[g];
        L[1] = l_s[g + 8];
        M[0] = m_s[g];
        M[1] = m_s[g + 8];
#pragma unroll
        for (int n = 0; n < NW; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) O[n][e] = acc[n][e];
    }
    else
    {
        if (!last_to_finish(counters + blockIdx.x * num_kv_heads + kvh, ns, zstep)) return;
        L[0] = L[1] = 0.f;
#pragma unroll
        for (int n = 0; n < NW; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) O[n][e] = 0.f;
        // The fold is sequential, but its loads are not: split sp + 1's partials are loaded while split sp is
        // folded, so the chain waits for one load latency in all instead of one per split.
        const long long base = (long long)(blockIdx.x * num_kv_heads + kvh) * max_splits;
        float cur[2][2 + 2 * NW], nxt[2][2 + 2 * NW];
        load_partial<NW>(part_acc, part_ml, (base + z0) * rows, rows, g, warp * NW * 8 + tig * 2, HD, cur);
        for (int sp = z0; sp < nsplits; sp++)
        {
            if (sp + 1 < nsplits)
                load_partial<NW>(part_acc, part_ml, (base + sp + 1) * rows, rows, g, warp * NW * 8 + tig * 2, HD, nxt);
#pragma unroll
            for (int h = 0; h < 2; h++)
            {
                if (g + 8 * h >= rows) continue;
                float a, bb;
                if (!merge_scales(M[h], L[h], cur[h][0], cur[h][1], a, bb)) continue;
#pragma unroll
                for (int n = 0; n < NW; n++)
                {
                    O[n][2 * h] = fmaf(cur[h][2 + 2 * n], bb, O[n][2 * h] * a);
                    O[n][2 * h + 1] = fmaf(cur[h][3 + 2 * n], bb, O[n][2 * h + 1] * a);
                }
            }
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int e = 0; e < 2 + 2 * NW; e++) cur[h][e] = nxt[h][e];
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++)
    {
        int r = g + 8 * h;
        if (r >= rows) continue;
        T* o = out + ((long long)tok0 * num_heads + kvh * group + r) * HD + warp * NW * 8 + tig * 2;
        float den = att_denominator(L[h], M[h], sinks, kvh * group + r);
#pragma unroll
        for (int n = 0; n < NW; n++) { o[n * 8] = st(O[n][2 * h] / den); o[n * 8 + 1] = st(O[n][2 * h + 1] / den); }
    }
}

#define ATTENTION_MMA_KERNEL(NAME, IMPL)                                                                            \
    extern "C" __global__ void __launch_bounds__(128) NAME(                                                         \
        const T* q, const T* kc, const T* vc, T* out, float* part_acc, float* part_ml, int* counters, const int* tiles, \
        const int* block_tables, int max_blocks, const int* positions, int num_heads, int num_kv_heads, int head_dim,  \
        int block_size, float scale, int max_splits, int nbuf, int window, float softcap,                          \
        const float* sinks)                                                                                         \
    {                                                                                                               \
        PDL_ENTRY();                                                                                                \
        IMPL(q, kc, vc, out, part_acc, part_ml, counters, tiles, block_tables, max_blocks,                           \
            positions, num_heads, num_kv_heads, head_dim, block_size, scale, max_splits, nbuf, window,                \
            softcap, sinks);                                                                                        \
    }

// One block walking all splits of its tile (any batch), or several blocks per decode tile's splits.
ATTENTION_MMA_KERNEL(attention_mma_d64, attention_mma_impl<64>)
ATTENTION_MMA_KERNEL(attention_mma_d128, attention_mma_impl<128>)
ATTENTION_MMA_KERNEL(attention_mma_decode_d64, attention_mma_decode_impl<64>)
ATTENTION_MMA_KERNEL(attention_mma_decode_d128, attention_mma_decode_impl<128>)
#endif
