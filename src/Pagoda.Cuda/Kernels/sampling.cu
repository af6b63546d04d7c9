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

template <typename V> __device__ __forceinline__ float ldx(V v);
template <> __device__ __forceinline__ float ldx<float>(float v) { return v; }
#if defined(ELEM_BF16) || defined(ELEM_F16)
template <> __device__ __forceinline__ float ldx<T>(T v) { return ld(v); }
#endif

// Stage 1: grid (chunks, rows). The k best keys of one chunk of a row -> part[row][chunk][0..k).
template <typename V> __device__ void topk_chunks_body(const V* logits, u64* part, int vocab, int k)
{
    __shared__ u64 keys[TOPK_CHUNK];
    int chunk = blockIdx.x, row = blockIdx.y, chunks = gridDim.x;
    int start = chunk * TOPK_CHUNK;
    int n = min(TOPK_CHUNK, vocab - start);
    const V* x = logits + (long long)row * vocab + start;
    for (int i = threadIdx.x; i < n; i += blockDim.x) keys[i] = topk_key(ldx<V>(x[i]), start + i);
    __syncthreads();
    u64* out = part + ((long long)row * chunks + chunk) * k;
    u64 limit = ~0ull;
    for (int r = 0; r < k; r++)
    {
        limit = block_best_below(keys, n, limit);
        if (threadIdx.x == 0) out[r] = limit;
    }
}

extern "C" __global__ void topk_chunks(const T* logits, u64* part, int vocab, int k)
{
    PDL_ENTRY();
    topk_chunks_body<T>(logits, part, vocab, k);
}

// The same over float rows (the processed copy of 16-bit logits).
extern "C" __global__ void topk_chunks_f32(const float* logits, u64* part, int vocab, int k)
{
    PDL_ENTRY();
    topk_chunks_body<float>(logits, part, vocab, k);
}

// Stage 2: grid (rows). Merges a row's chunk candidates into its k best: dst[row·stride + 0..k) values,
// dst[row·stride + k..2k) ids as floats (-1 past the row's end).
extern "C" __global__ void topk_merge(const u64* part, float* dst, int chunks, int k, int stride)
{
    PDL_ENTRY();
    int row = blockIdx.x;
    const u64* keys = part + (long long)row * chunks * k;
    float* out = dst + (long long)row * stride;
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

// ---- Sampling on the device (DeviceSamplingInputs): mask, sparse edits and penalties on a float copy of the
// rows, then the candidates (above), the mass and the whole-row draw, and raw logprob facts. The per-step inputs
// live in pinned host memory read directly over the bus (mapped: one address on both sides), found through a
// descriptor at a fixed address, so captured graphs read each step's lists whatever their lengths:
// desc[0] the ints' base address; desc[1..6] offsets (in ints) of params, edit offsets, edits, penalty offsets,
// penalties, masks; desc[7] mask words per row; desc[8] this step's number and desc[9] the address of the flag the
// host sets to it once the masks are written (a replay's masks are made while its forward runs).

#define SP_WIDTH 10

__device__ __forceinline__ const int* sp_region(const long long* desc, int i) { return (const int*)desc[0] + desc[i]; }

// One thread: holds the stream until the host has written this step's masks.
extern "C" __global__ void sampling_wait(const long long* desc)
{
    PDL_ENTRY();
    const volatile int* flag = (const volatile int*)desc[9];
    int step = (int)desc[8];
    while (*flag != step) __nanosleep(500);
}

// Grid (ceil(vocab / 256), rows): x = the rows in float, with the allowed-token mask applied when `masked`.
extern "C" __global__ void sampling_prepare(const T* logits, float* x, const long long* desc, int vocab, int masked)
{
    PDL_ENTRY();
    int row = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= vocab) return;
    float v = ld(logits[(long long)row * vocab + i]);
    if (masked)
    {
        const int* m = sp_region(desc, 6) + (long long)row * desc[7];
        if (!((m[i >> 5] >> (i & 31)) & 1)) v = NEG_INF;
    }
    x[(long long)row * vocab + i] = v;
}

// Grid (rows): the sparse additions, then the penalties, with the host's float operations in the host's order
// (LogitsProcessors.Penalize). Tokens are unique within each list, so no two threads touch one logit at once.
extern "C" __global__ void sampling_edits(float* x, const long long* desc, int vocab)
{
    PDL_ENTRY();
    int row = blockIdx.x;
    float* xr = x + (long long)row * vocab;
    const int* eo = sp_region(desc, 2);
    const int* ed = sp_region(desc, 3);
    for (int e = eo[row] + threadIdx.x; e < eo[row + 1]; e += blockDim.x)
    {
        int id = ed[2 * e];
        if ((unsigned)id < (unsigned)vocab) xr[id] = __fadd_rn(xr[id], __int_as_float(ed[2 * e + 1]));
    }
    __syncthreads();
    const int* prm = sp_region(desc, 1) + row * SP_WIDTH;
    float r = __int_as_float(prm[3]), f = __int_as_float(prm[4]), p = __int_as_float(prm[5]);
    const int* po = sp_region(desc, 4);
    const int* pe = sp_region(desc, 5);
    for (int e = po[row] + threadIdx.x; e < po[row + 1]; e += blockDim.x)
    {
        int id = pe[2 * e], count = pe[2 * e + 1];
        if ((unsigned)id >= (unsigned)vocab) continue;
        float v = xr[id];
        if (r != 1.f) v = v > 0.f ? __fdiv_rn(v, r) : __fmul_rn(v, r);
        if (count > 0) v = __fsub_rn(v, __fadd_rn(__fmul_rn(f, (float)count), p));
        xr[id] = v;
    }
}

// Min-p and top-p without a top-k (Nucleus.cs, step for step): a weight's integer mass in units of 2^-40, and a key
// that orders logits as unsigned integers.
__device__ __forceinline__ unsigned long long nucleus_quantum(float w) { return (unsigned long long)(w * 1099511627776.0f); }
__device__ __forceinline__ unsigned order_key(float x)
{
    unsigned b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// The cut (key, id) that keeps the smallest prefix of the row's order (descending logit, ties by lower id) holding
// top_p of the mass min-p keeps: a radix select, 8 bits of the key a pass, over integer masses (sums in any order
// agree). Each thread walks its segment [lo, hi) and adds runs of one bucket at once: the first passes put most
// of a row in one or two buckets. Every thread gets the cut.
__device__ void nucleus_cut(const float* xr, int lo, int hi, float mx, float invT, float top_p, float min_p,
    unsigned& cut_key, int& cut_id)
{
    __shared__ unsigned long long hmass[256];
    __shared__ unsigned hcount[256];
    __shared__ unsigned long long s_above, s_target;
    __shared__ unsigned s_prefix;
    __shared__ int s_chosen, s_need, s_id;
    __shared__ int s_ties[1024];
    const int t = threadIdx.x, n = blockDim.x;
    if (t == 0) { s_above = 0; s_target = 0; s_prefix = 0; s_id = 0x7fffffff; s_need = 0; }
    for (int level = 0; level < 4; level++)
    {
        const int shift = 24 - 8 * level;
        for (int b = t; b < 256; b += n) { hmass[b] = 0; hcount[b] = 0; }
        __syncthreads();
        const unsigned prefix = s_prefix;
        int run_bin = -1;
        unsigned long long run = 0;
        unsigned run_count = 0;
        for (int i = lo; i < hi; i++)
        {
            unsigned key = order_key(xr[i]);
            if (level > 0 && (key >> (shift + 8)) != (prefix >> (shift + 8))) continue;   // outside the bucket: no exp
            float w = expf(__fmul_rn(__fsub_rn(xr[i], mx), invT));
            if (w < min_p) continue;
            int b = (key >> shift) & 255;
            if (b != run_bin)
            {
                if (run_bin >= 0) { atomicAdd(&hmass[run_bin], run); atomicAdd(&hcount[run_bin], run_count); }
                run_bin = b; run = 0; run_count = 0;
            }
            run += nucleus_quantum(w);
            run_count++;
        }
        if (run_bin >= 0) { atomicAdd(&hmass[run_bin], run); atomicAdd(&hcount[run_bin], run_count); }
        __syncthreads();
        if (t == 0)
        {
            if (level == 0)
            {
                unsigned long long total = 0;
                for (int b = 0; b < 256; b++) total += hmass[b];
                double want = (double)top_p * (double)total;   // the target is ceil(want), at least 1
                unsigned long long target = (unsigned long long)want;
                if ((double)target < want) target++;
                s_target = total == 0 ? 0ull : target == 0 ? 1ull : target;
            }
            int c = 255;
            if (s_target > 0)
                for (; c > 0 && s_above + hmass[c] < s_target; c--) s_above += hmass[c];
            s_chosen = c;
            s_prefix = prefix | ((unsigned)c << shift);
        }
        __syncthreads();
        if (s_target == 0) { cut_key = 0; cut_id = 0x7fffffff; return; }   // no mass (every logit -inf): keep all
    }
    // The key is exact; its tokens tie. Keep as many, in id order, as reach the target.
    if (t == 0)
    {
        unsigned ties = hcount[s_chosen];
        unsigned long long each = hmass[s_chosen] / ties;
        unsigned long long need = each == 0 ? ties : (s_target - s_above + each - 1) / each;
        s_need = need >= ties ? 0 : (int)need;
    }
    __syncthreads();
    const unsigned key = s_prefix;
    if (s_need > 0)
    {
        int mine = 0;
        for (int i = lo; i < hi; i++)
            if (order_key(xr[i]) == key && expf(__fmul_rn(__fsub_rn(xr[i], mx), invT)) >= min_p) mine++;
        s_ties[t] = mine;
        __syncthreads();
        if (t == 0) { int acc = 0; for (int j = 0; j < n; j++) { int v = s_ties[j]; s_ties[j] = acc; acc += v; } }
        __syncthreads();
        int before = s_ties[t];
        if (before < s_need && before + mine >= s_need)
        {
            int left = s_need - before;
            for (int i = lo; i < hi; i++)
                if (order_key(xr[i]) == key && expf(__fmul_rn(__fsub_rn(xr[i], mx), invT)) >= min_p && --left == 0) { s_id = i; break; }
        }
        __syncthreads();
    }
    cut_key = key;
    cut_id = s_id;
}

// Grid (rows), 1024 threads, after the candidates: the row's mass Σ exp((x - max) / T) and, for rows flagged to
// draw, the token where the running sum in id order passes u · mass (Sampler's whole-row draw), over the tokens
// the row's min-p and top-p keep when it is a nucleus row; a row given its token (flag 2: a prompt token) reports
// that instead. Each thread owns a contiguous segment; segment sums are scanned in double.
extern "C" __global__ void __launch_bounds__(1024) sampling_draw(const float* x, float* out, const long long* desc, int vocab, int k, int width)
{
    PDL_ENTRY();
    __shared__ double sums[1024];
    __shared__ int found, lastAny;
    int row = blockIdx.x, t = threadIdx.x, n = blockDim.x;
    const float* xr = x + (long long)row * vocab;
    float* o = out + (long long)row * width;
    const int* prm = sp_region(desc, 1) + row * SP_WIDTH;
    float invT = __int_as_float(prm[0]);
    float mx = o[0];
    if (t == 0) { found = -1; lastAny = -1; }
    int seg = (vocab + n - 1) / n, lo = min(vocab, t * seg), hi = min(vocab, lo + seg);
    // Weights of tokens the cut drops count as zero (a row without the flag keeps every token).
    const bool nucleus = (prm[6] & 4) && mx != NEG_INF;
    const float min_p = nucleus ? __int_as_float(prm[9]) : 0.f;
    unsigned cut_key = 0;
    int cut_id = 0x7fffffff;
    const float top_p = __int_as_float(prm[8]);
    if (nucleus && top_p < 1.f) nucleus_cut(xr, lo, hi, mx, invT, top_p, min_p, cut_key, cut_id);   // min-p alone: no cut
    auto weight = [&](int i) {
        float w = expf(__fmul_rn(__fsub_rn(xr[i], mx), invT));
        if (nucleus)
        {
            unsigned key = order_key(xr[i]);
            if (w < min_p || !(key > cut_key || (key == cut_key && i <= cut_id))) w = 0.f;
        }
        return w;
    };
    double s = 0;
    int last = -1;
    if (mx != NEG_INF)
    {
        for (int i = lo; i < hi; i++)
        {
            float w = weight(i);
            if (w != 0.f) { s += w; last = i; }
        }
    }
    sums[t] = s;
    __syncthreads();
    if (last >= 0) atomicMax(&lastAny, last);
    for (int off = 1; off < n; off <<= 1)
    {
        double v = t >= off ? sums[t - off] : 0.0;
        __syncthreads();
        sums[t] += v;
        __syncthreads();
    }
    double mass = sums[n - 1];
    if (!(prm[6] & 1))
    {
        if (t == 0) { o[2 * k] = (prm[6] & 2) ? (float)prm[7] : -1.f; o[2 * k + 1] = (float)mass; }
        return;
    }
    double u = __hiloint2double(prm[2], prm[1]);
    double target = u * mass, before = t > 0 ? sums[t - 1] : 0.0;
    if (s > 0 && target >= before && target < sums[t])
    {
        double rem = target - before;
        int pick = last;
        for (int i = lo; i < hi; i++)
        {
            float w = weight(i);
            if (w == 0.f) continue;
            rem -= w;
            if (rem < 0) { pick = i; break; }
        }
        found = pick;
    }
    __syncthreads();
    if (t == 0)
    {
        o[2 * k] = (float)(found >= 0 ? found : lastAny);
        o[2 * k + 1] = (float)mass;
    }
}

// Grid (rows), 1024 threads, with logprobs: the raw row's logsumexp, and the raw logit and rank (1 + how many raw
// logits are larger) of each candidate and of the drawn token. Thresholds are sorted once; each logit above the
// smallest adds one to the bin of the first threshold it exceeds, and prefix sums of the bins are the counts.
extern "C" __global__ void __launch_bounds__(1024) sampling_ranks(const T* logits, float* out, int vocab, int k, int width)
{
    PDL_ENTRY();
    __shared__ float thr[65], sorted[65];
    __shared__ int order[65], hist[66];
    __shared__ float redf[32];
    __shared__ double redd[32];
    int row = blockIdx.x, t = threadIdx.x, m = k + 1, lane = t & 31, warp = t >> 5, warps = blockDim.x >> 5;
    const T* raw = logits + (long long)row * vocab;
    float* o = out + (long long)row * width;
    if (t < m)
    {
        int id = (int)(t < k ? o[k + t] : o[2 * k]);
        thr[t] = id >= 0 ? ld(raw[id]) : __int_as_float(0x7f800000);
    }
    if (t <= m) hist[t] = 0;
    float mx = NEG_INF;
    for (int i = t; i < vocab; i += blockDim.x) mx = fmaxf(mx, ld(raw[i]));
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (lane == 0) redf[warp] = mx;
    __syncthreads();
    if (t == 0)
    {
        float v = redf[0];
        for (int w = 1; w < warps; w++) v = fmaxf(v, redf[w]);
        redf[0] = v;
        // Thresholds in descending order (insertion sort: at most 65).
        for (int j = 0; j < m; j++)
        {
            int q = j;
            while (q > 0 && sorted[q - 1] < thr[j]) { sorted[q] = sorted[q - 1]; order[q] = order[q - 1]; q--; }
            sorted[q] = thr[j];
            order[q] = j;
        }
    }
    __syncthreads();
    mx = redf[0];
    float smallest = sorted[m - 1];
    double s = 0;
    for (int i = t; i < vocab; i += blockDim.x)
    {
        float v = ld(raw[i]);
        s += expf(v - mx);
        if (v > smallest)
        {
            int a = 0, b = m - 1;   // first q with sorted[q] < v (exists: v > sorted[m - 1])
            while (a < b) { int c = (a + b) >> 1; if (sorted[c] < v) b = c; else a = c + 1; }
            atomicAdd(&hist[a], 1);
        }
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) redd[warp] = s;
    __syncthreads();
    if (t == 0)
    {
        double total = 0;
        for (int w = 0; w < warps; w++) total += redd[w];
        o[2 * k + 2] = (float)((double)mx + log(total));
        int count = 0;
        for (int q = 0; q < m; q++)
        {
            count += hist[q];
            int j = order[q];
            float rank = (float)(1 + count);
            if (j < k) { o[2 * k + 3 + j] = thr[j]; o[3 * k + 3 + j] = rank; }
            else { o[4 * k + 3] = thr[j]; o[4 * k + 4] = rank; }
        }
    }
}
