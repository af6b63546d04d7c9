// Sampling on the device (DeviceSamplingInputs). A step's rows go through chunks of SAMPLE_CHUNK logits, one block
// each (grid (chunks, rows)), so that every multiprocessor works whatever the batch: a chunk is loaded, masked, given
// its sparse edits and penalties (processed steps), and reduced to its k best entries; a merge per row keeps the
// row's k best, sorted. Rows that draw over the whole row (no top-k) then go through the nucleus cut (top-p, as a
// radix select over integer masses) and the draw, also chunk by chunk. Raw logprob facts come last.
//
// An entry's 64-bit key orders it as a stable descending sort would: the float's bits made monotone in the high word,
// the complemented id in the low word (lower id wins a tie). Keys are unique per row; 0 stands for no entry.

typedef unsigned long long u64;

#define SAMPLE_CHUNK 4096

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

// The block's largest v; every thread gets it.
__device__ u64 block_max_u64(u64 v)
{
    __shared__ u64 partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max_u64(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        v = warp_max_u64(lane < warps ? partial[lane] : 0ull);
        if (lane == 0) partial[0] = v;
    }
    __syncthreads();
    u64 r = partial[0];
    __syncthreads();
    return r;
}

// The key K such that exactly k of keys[0..n) (read through `at`; n > k >= 1, keys unique but for 0s) are above it or
// equal to it, taking the 0s last: a radix select, 8 bits a pass, that stops once the keys sharing the chosen prefix
// are exactly those still needed (K is then the prefix, its lower bits 0). Every thread gets K.
template <typename F> __device__ u64 radix_threshold(F at, int n, int k)
{
    __shared__ unsigned hist[256];
    __shared__ u64 s_prefix;
    __shared__ int s_need, s_exact;
    const int t = threadIdx.x, lane = t & 31;
    u64 prefix = 0;
    int need = k;
    for (int shift = 56; shift >= 0; shift -= 8)
    {
        for (int b = t; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        for (int base = 0; base < n; base += blockDim.x)
        {
            int i = base + t, b = -1;
            if (i < n)
            {
                u64 key = at(i);
                if (shift == 56 || (key >> (shift + 8)) == (prefix >> (shift + 8))) b = (int)((key >> shift) & 255);
            }
            unsigned peers = __match_any_sync(0xffffffffu, b);   // one atomic per bucket and warp
            if (b >= 0 && lane == __ffs(peers) - 1) atomicAdd(&hist[b], (unsigned)__popc(peers));
        }
        __syncthreads();
        if (t < 32)
        {
            // Lane L holds bins 255 - 8L down to 248 - 8L; the lane whose bins reach `need` (counted from the top) picks.
            unsigned c[8], sum = 0;
#pragma unroll
            for (int j = 0; j < 8; j++) { c[j] = hist[255 - 8 * t - j]; sum += c[j]; }
            unsigned incl = sum;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1)
            {
                unsigned v = __shfl_up_sync(0xffffffffu, incl, o);
                if (t >= o) incl += v;
            }
            unsigned before = incl - sum;
            if (before < (unsigned)need && (unsigned)need <= incl)
            {
                for (int j = 0; j < 8; j++)
                {
                    if (before + c[j] >= (unsigned)need)
                    {
                        s_prefix = prefix | ((u64)(255 - 8 * t - j) << shift);
                        s_need = need - (int)before;
                        s_exact = c[j] == (unsigned)(need - (int)before);
                        break;
                    }
                    before += c[j];
                }
            }
        }
        __syncthreads();
        prefix = s_prefix;
        need = s_need;
        bool exact = s_exact;
        __syncthreads();   // the next pass rewrites the histogram and the results
        if (exact) break;
    }
    return prefix;
}

// Writes the k largest of keys[0..n) (read through `at`) to out[0..k), in any order; 0 for missing ones (n < k).
template <typename F> __device__ void block_topk(F at, int n, int k, u64* out)
{
    __shared__ int count;
    const int t = threadIdx.x;
    if (n <= k)
    {
        for (int i = t; i < k; i += blockDim.x) out[i] = i < n ? at(i) : 0ull;
        return;
    }
    if (k == 1)
    {
        u64 v = 0;
        for (int i = t; i < n; i += blockDim.x) { u64 key = at(i); v = key > v ? key : v; }
        v = block_max_u64(v);
        if (t == 0) out[0] = v;
        return;
    }
    u64 thr = radix_threshold(at, n, k);
    if (t == 0) count = 0;
    __syncthreads();
    for (int i = t; i < n; i += blockDim.x)
    {
        u64 key = at(i);
        if (key > thr) out[atomicAdd(&count, 1)] = key;   // fewer than k
    }
    __syncthreads();
    for (int i = t; i < n; i += blockDim.x)
    {
        u64 key = at(i);
        if (key == thr)
        {
            int c = atomicAdd(&count, 1);
            if (c < k) out[c] = key;
        }
    }
}

// block_topk's result over a chunk, cheaper: the k-th largest of the threads' own maxima bounds the chunk's k-th
// largest from below (at least k keys reach it), so only keys at or above it can be among the k best. Only the k
// threads whose maximum reaches it hold such keys, so they number at most k times a thread's share (16k for a full
// chunk); when they fit FILTER_CAP the exact selection runs over them alone, else over the whole chunk. For 256 threads.
#define FILTER_CAP 512
template <typename F> __device__ void block_topk_filtered(F at, int n, int k, u64* out)
{
    __shared__ u64 maxima[256];
    __shared__ u64 cand[FILTER_CAP];
    __shared__ int s_count;
    const int t = threadIdx.x;
    if (n <= k || k == 1 || blockDim.x != 256)
    {
        block_topk(at, n, k, out);
        return;
    }
    u64 m = 0;
    for (int i = t; i < n; i += blockDim.x) { u64 key = at(i); m = key > m ? key : m; }
    maxima[t] = m;
    if (t == 0) s_count = 0;
    __syncthreads();
    const u64 bound = radix_threshold([&](int i) { return maxima[i]; }, 256, k);
    if (m >= bound)
    {
        for (int i = t; i < n; i += blockDim.x)
        {
            u64 key = at(i);
            if (key >= bound)
            {
                int c = atomicAdd(&s_count, 1);
                if (c < FILTER_CAP) cand[c] = key;
            }
        }
    }
    __syncthreads();
    const int count = s_count;
    if (bound != 0 && count <= FILTER_CAP)
        block_topk([&](int i) { return cand[i]; }, count, k, out);
    else
        block_topk(at, n, k, out);
}

// ---- The step's inputs. They live in pinned host memory (mapped: one address on both sides), found through a
// descriptor: desc[0] the ints' base address; desc[1..6] offsets (in ints) of params, edit offsets, edits, penalty
// offsets, penalties, masks; desc[7] mask words per row; desc[10] a device buffer that sampling_stage copies
// everything before the masks into (every chunk of a row reads the row's lists). The host writes them after it
// launched the forward and before it launches the reduction.

#define SP_WIDTH 10

__device__ __forceinline__ const int* sp_host(const long long* desc, int i) { return (const int*)desc[0] + desc[i]; }
__device__ __forceinline__ const int* sp_dev(const long long* desc, int i) { return (const int*)desc[10] + desc[i]; }

// Copies the lists (all regions before the masks; 256-byte aligned) from pinned memory to the device buffer.
extern "C" __global__ void sampling_stage(const long long* desc)
{
    PDL_ENTRY();
    const int4* src = (const int4*)desc[0];
    int4* dst = (int4*)desc[10];
    long long n = desc[6] / 4;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = src[i];
}

#define SC_PROCESSED 1   // apply the mask (with SC_MASKED), the edits and the penalties
#define SC_MASKED 2
#define SC_DRAWS 4       // write drawing rows' processed values to x

// Grid (chunks, rows), 256 threads: the k best keys of one chunk of a row -> part[row][chunk][0..k) (any order).
// Processed: the mask, then the sparse additions, then the penalties with the host's float operations in the host's
// order (LogitsProcessors.Penalize); tokens are unique within each list, so no two threads touch one logit at once.
extern "C" __global__ void __launch_bounds__(256) sample_chunks(const T* logits, float* x, u64* part, const long long* desc,
    int vocab, int k, int flags)
{
    PDL_ENTRY();
    __shared__ u64 keys[SAMPLE_CHUNK];
    const int chunk = blockIdx.x, row = blockIdx.y, chunks = gridDim.x, t = threadIdx.x;
    const int start = chunk * SAMPLE_CHUNK, n = min(SAMPLE_CHUNK, vocab - start);
    const T* raw = logits + (long long)row * vocab + start;
    u64* out = part + ((long long)row * chunks + chunk) * k;
    if (!(flags & SC_PROCESSED) && k == 1)
    {
        u64 best = 0;   // greedy: the best key straight from the loads
        for (int i = t; i < n; i += blockDim.x)
        {
            u64 key = topk_key(ld(raw[i]), start + i);
            best = key > best ? key : best;
        }
        best = block_max_u64(best);
        if (t == 0) out[0] = best;
        return;
    }
    const int* m = (flags & SC_MASKED) ? sp_host(desc, 6) + (long long)row * desc[7] + (start >> 5) : nullptr;
    for (int i = t; i < n; i += blockDim.x)
    {
        float v = ld(raw[i]);
        if (m && !((m[i >> 5] >> (i & 31)) & 1)) v = NEG_INF;
        keys[i] = topk_key(v, start + i);
    }
    __syncthreads();
    if (flags & SC_PROCESSED)
    {
        const int* eo = sp_dev(desc, 2);
        const int* ed = sp_dev(desc, 3);
        for (int e = eo[row] + t; e < eo[row + 1]; e += blockDim.x)
        {
            int i = ed[2 * e] - start;
            if ((unsigned)i < (unsigned)n) keys[i] = topk_key(__fadd_rn(topk_value(keys[i]), __int_as_float(ed[2 * e + 1])), start + i);
        }
        __syncthreads();
        const int* prm = sp_dev(desc, 1) + row * SP_WIDTH;
        float r = __int_as_float(prm[3]), f = __int_as_float(prm[4]), p = __int_as_float(prm[5]);
        const int* po = sp_dev(desc, 4);
        const int* pe = sp_dev(desc, 5);
        for (int e = po[row] + t; e < po[row + 1]; e += blockDim.x)
        {
            int i = pe[2 * e] - start, count = pe[2 * e + 1];
            if ((unsigned)i >= (unsigned)n) continue;
            float v = topk_value(keys[i]);
            if (r != 1.f) v = v > 0.f ? __fdiv_rn(v, r) : __fmul_rn(v, r);
            if (count > 0) v = __fsub_rn(v, __fadd_rn(__fmul_rn(f, (float)count), p));
            keys[i] = topk_key(v, start + i);
        }
        __syncthreads();
        if ((flags & SC_DRAWS) && (prm[6] & 1))
        {
            float* xr = x + (long long)row * vocab + start;
            for (int i = t; i < n; i += blockDim.x) xr[i] = topk_value(keys[i]);
        }
    }
    block_topk_filtered([&](int i) { return keys[i]; }, n, k, out);
}

// Grid (rows), 256 threads: a row's k best of its chunks' candidates, best first: dst[row·stride + 0..k) values,
// dst[row·stride + k..2k) ids as floats (-1 past the row's end).
extern "C" __global__ void __launch_bounds__(256) topk_merge(const u64* part, float* dst, int chunks, int k, int stride)
{
    PDL_ENTRY();
    __shared__ u64 sel[64];
    const int row = blockIdx.x, t = threadIdx.x, m = chunks * k;
    const u64* keys = part + (long long)row * m;
    block_topk([&](int i) { return keys[i]; }, m, k, sel);
    __syncthreads();
    if (t < k)
    {
        u64 mine = sel[t];
        int rank = 0;
        for (int j = 0; j < k; j++)
        {
            u64 o = sel[j];
            rank += o > mine || (o == mine && j < t);
        }
        float* out = dst + (long long)row * stride;
        out[rank] = mine ? topk_value(mine) : NEG_INF;
        out[k + rank] = mine ? (float)topk_id(mine) : -1.f;
    }
}

// ---- The whole-row draw: the token where the running sum, in id order, of the weights exp((x - max) / T) passes
// u · mass (Sampler's whole-row draw). A nucleus row's weights are 0 below its min-p and past its top-p cut (Nucleus.cs,
// step for step): the cut is the (key, id) that keeps the smallest prefix of the row's order (descending logit, ties
// by lower id) holding top_p of the mass min-p keeps, found by a radix select over integer masses (units of 2^-40:
// sums in any order agree), 8 bits of the key a level, each level a histogram over every chunk and a select per row.

struct DrawState
{
    u64 above, target;   // mass above the chosen prefix; the mass the cut must reach
    unsigned prefix;     // the key bits chosen so far; after level 3 the cut's key
    int need;            // tokens of the cut's key kept, in id order (0: all)
    int cut_id;          // the last kept token of the cut's key
    int cut;             // whether a top-p cut applies
};

__device__ __forceinline__ unsigned long long nucleus_quantum(float w) { return (unsigned long long)(w * 1099511627776.0f); }
__device__ __forceinline__ unsigned order_key(float x)
{
    unsigned b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float draw_exp(float v, float mx, float invT) { return expf(__fmul_rn(__fsub_rn(v, mx), invT)); }

// A token's weight in its row's draw (0 when the row's cut drops it).
__device__ __forceinline__ float draw_weight(float v, int id, float mx, float invT, bool nucleus, float min_p, const DrawState& s)
{
    float w = draw_exp(v, mx, invT);
    if (nucleus)
    {
        unsigned key = order_key(v);
        if (w < min_p || (s.cut && !(key > s.prefix || (key == s.prefix && id <= s.cut_id)))) w = 0.f;
    }
    return w;
}

struct DrawRow
{
    const int* prm;
    float mx, invT, min_p;
    bool draws, nucleus;
};

__device__ __forceinline__ DrawRow draw_row(const long long* desc, const float* out, int row, int width)
{
    DrawRow d;
    d.prm = sp_dev(desc, 1) + row * SP_WIDTH;
    d.mx = out[(long long)row * width];   // the best processed value (candidate 0)
    d.invT = __int_as_float(d.prm[0]);
    d.draws = d.prm[6] & 1;
    d.nucleus = (d.prm[6] & 4) && d.mx != NEG_INF;
    d.min_p = d.nucleus ? __int_as_float(d.prm[9]) : 0.f;
    return d;
}

// Whether token value v is one of the cut key's ties that min-p keeps.
__device__ __forceinline__ bool cut_tie(float v, const DrawRow& d, const DrawState& s)
{
    return order_key(v) == s.prefix && draw_exp(v, d.mx, d.invT) >= d.min_p;
}

// This thread's contiguous run [lo, hi) of a chunk of n tokens (where tokens are walked in id order).
struct Run { int lo, hi; };
__device__ __forceinline__ Run thread_run(int n)
{
    int per = (n + blockDim.x - 1) / blockDim.x, lo = min(n, (int)threadIdx.x * per);
    return { lo, min(n, lo + per) };
}

// Grid (rows), 256 threads: clears the row's histogram; the state says whether a top-p cut applies.
extern "C" __global__ void __launch_bounds__(256) draw_init(const float* out, DrawState* st, u64* hmass, unsigned* hcount,
    const long long* desc, int width)
{
    PDL_ENTRY();
    const int row = blockIdx.x;
    for (int b = threadIdx.x; b < 256; b += blockDim.x) { hmass[row * 256 + b] = 0; hcount[row * 256 + b] = 0; }
    if (threadIdx.x == 0)
    {
        DrawRow d = draw_row(desc, out, row, width);
        DrawState s;
        s.above = 0; s.target = 0; s.prefix = 0; s.need = 0; s.cut_id = 0x7fffffff;
        s.cut = d.draws && d.nucleus && __int_as_float(d.prm[8]) < 1.f;
        st[row] = s;
    }
}

// Grid (chunks, rows), 256 threads: level `level`'s histogram (integer mass and count per 8-bit bucket of the key,
// among tokens whose higher bits match the prefix and whose weight min-p keeps). Each thread walks a contiguous run
// and adds runs of one bucket at once: the first levels put most of a row in one or two buckets.
extern "C" __global__ void __launch_bounds__(256) nucleus_hist(const float* x, const float* out, const DrawState* st,
    u64* hmass, unsigned* hcount, const long long* desc, int vocab, int width, int level)
{
    PDL_ENTRY();
    __shared__ u64 smass[256];
    __shared__ unsigned scount[256];
    const int chunk = blockIdx.x, row = blockIdx.y, t = threadIdx.x;
    const DrawState s = st[row];
    if (!s.cut) return;
    for (int b = t; b < 256; b += blockDim.x) { smass[b] = 0; scount[b] = 0; }
    __syncthreads();
    const DrawRow d = draw_row(desc, out, row, width);
    const int shift = 24 - 8 * level, start = chunk * SAMPLE_CHUNK, n = min(SAMPLE_CHUNK, vocab - start);
    const float* xr = x + (long long)row * vocab + start;
    const auto [lo, hi] = thread_run(n);
    int run_bin = -1;
    u64 run = 0;
    unsigned run_count = 0;
    for (int i = lo; i < hi; i++)
    {
        float v = xr[i];
        unsigned key = order_key(v);
        if (level > 0 && (key >> (shift + 8)) != (s.prefix >> (shift + 8))) continue;   // outside the bucket: no exp
        float w = draw_exp(v, d.mx, d.invT);
        if (w < d.min_p) continue;
        int b = (key >> shift) & 255;
        if (b != run_bin)
        {
            if (run_bin >= 0) { atomicAdd(&smass[run_bin], run); atomicAdd(&scount[run_bin], run_count); }
            run_bin = b; run = 0; run_count = 0;
        }
        run += nucleus_quantum(w);
        run_count++;
    }
    if (run_bin >= 0) { atomicAdd(&smass[run_bin], run); atomicAdd(&scount[run_bin], run_count); }
    __syncthreads();
    for (int b = t; b < 256; b += blockDim.x)
    {
        if (scount[b]) { atomicAdd(&hmass[row * 256 + b], smass[b]); atomicAdd(&hcount[row * 256 + b], scount[b]); }
    }
}

// Grid (rows), 32 threads: level `level`'s bucket, the first from the top where the mass above it and its own reach
// the target (level 0 sets the target: ceil(top_p · total), at least 1; no mass at all keeps every token). Clears the
// histogram for the next level; after level 3 the key is exact and its tokens tie: `need` of them are kept, in id order.
extern "C" __global__ void __launch_bounds__(32) nucleus_select(DrawState* st, u64* hmass, unsigned* hcount, const long long* desc, int level)
{
    PDL_ENTRY();
    const int row = blockIdx.x, lane = threadIdx.x;
    DrawState s = st[row];
    if (!s.cut) return;
    u64* hm = hmass + row * 256;
    unsigned* hc = hcount + row * 256;
    u64 mass[8], sum = 0;
    unsigned count[8];
#pragma unroll
    for (int j = 0; j < 8; j++) { mass[j] = hm[255 - 8 * lane - j]; count[j] = hc[255 - 8 * lane - j]; sum += mass[j]; }
    if (level == 0)
    {
        u64 total = sum;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
        if (total == 0)
        {
            if (lane == 0) st[row].cut = 0;   // every logit -inf past min-p: keep all
            return;
        }
        float top_p = __int_as_float(sp_dev(desc, 1)[row * SP_WIDTH + 8]);
        double want = (double)top_p * (double)total;
        u64 target = (u64)want;
        if ((double)target < want) target++;
        s.target = target == 0 ? 1ull : target;
    }
    u64 incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1)
    {
        u64 v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
    }
    u64 before = s.above + incl - sum;
    __syncwarp();
    for (int j = 0; j < 8; j++) { hm[255 - 8 * lane - j] = 0; hc[255 - 8 * lane - j] = 0; }
    if (before < s.target && (before + sum >= s.target || lane == 31))
    {
        int j = 0;
        for (; j < 7 && before + mass[j] < s.target; j++) before += mass[j];   // bin 0 (lane 31, j 7) when none reaches it
        const int shift = 24 - 8 * level;
        DrawState r = s;
        r.prefix = s.prefix | ((unsigned)(255 - 8 * lane - j) << shift);
        r.above = before;
        if (level == 3)
        {
            unsigned ties = count[j];
            u64 each = ties ? mass[j] / ties : 0;
            u64 need = each == 0 ? ties : (s.target - before + each - 1) / each;
            r.need = need >= ties ? 0 : (int)need;
        }
        st[row] = r;
    }
}

// Grid (chunks, rows), 256 threads, for rows whose cut keeps only some tokens of its key: how many tokens of the key
// (that min-p keeps) each chunk holds.
extern "C" __global__ void __launch_bounds__(256) nucleus_ties(const float* x, const float* out, const DrawState* st, int* cties,
    const long long* desc, int vocab, int width)
{
    PDL_ENTRY();
    __shared__ int total;
    const int chunk = blockIdx.x, row = blockIdx.y, t = threadIdx.x;
    const DrawState s = st[row];
    if (!s.cut || s.need == 0) return;
    const DrawRow d = draw_row(desc, out, row, width);
    const int start = chunk * SAMPLE_CHUNK, n = min(SAMPLE_CHUNK, vocab - start);
    const float* xr = x + (long long)row * vocab + start;
    if (t == 0) total = 0;
    __syncthreads();
    int mine = 0;
    for (int i = t; i < n; i += blockDim.x)
        mine += cut_tie(xr[i], d, s);
    if (mine) atomicAdd(&total, mine);
    __syncthreads();
    if (t == 0) cties[row * gridDim.x + chunk] = total;
}

// Grid (rows), 256 threads: the cut's last kept token (the need-th tie in id order) from the chunks' tie counts.
extern "C" __global__ void __launch_bounds__(256) nucleus_tie_pick(const float* x, const float* out, DrawState* st, const int* cties,
    const long long* desc, int vocab, int width, int chunks)
{
    PDL_ENTRY();
    __shared__ int s_chunk, s_left, before[256];
    const int row = blockIdx.x, t = threadIdx.x;
    const DrawState s = st[row];
    if (!s.cut || s.need == 0) return;
    if (t == 0)
    {
        int acc = 0, c = 0;
        for (; c < chunks - 1 && acc + cties[row * chunks + c] < s.need; c++) acc += cties[row * chunks + c];
        s_chunk = c;
        s_left = s.need - acc;
    }
    __syncthreads();
    const DrawRow d = draw_row(desc, out, row, width);
    const int start = s_chunk * SAMPLE_CHUNK, n = min(SAMPLE_CHUNK, vocab - start);
    const float* xr = x + (long long)row * vocab + start;
    const auto [lo, hi] = thread_run(n);
    int mine = 0;
    for (int i = lo; i < hi; i++) mine += cut_tie(xr[i], d, s);
    before[t] = mine;
    __syncthreads();
    if (t == 0)
    {
        int acc = 0;
        for (int j = 0; j < blockDim.x; j++) { int v = before[j]; before[j] = acc; acc += v; }
    }
    __syncthreads();
    int left = s_left - before[t];
    if (left > 0 && left <= mine)
    {
        for (int i = lo; i < hi; i++)
            if (cut_tie(xr[i], d, s) && --left == 0) { st[row].cut_id = start + i; break; }
    }
}

__device__ double block_sum_double(double v)
{
    __shared__ double partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    double r = 0;
    for (int w = 0; w < warps; w++) r += partial[w];
    __syncthreads();
    return r;
}

// Grid (chunks, rows), 256 threads, for drawing rows: each chunk's sum of weights (double) and its last token with
// a weight.
extern "C" __global__ void __launch_bounds__(256) draw_sums(const float* x, const float* out, const DrawState* st, double* csum,
    int* clast, const long long* desc, int vocab, int width)
{
    PDL_ENTRY();
    __shared__ int last;
    const int chunk = blockIdx.x, row = blockIdx.y, t = threadIdx.x;
    const DrawRow d = draw_row(desc, out, row, width);
    if (!d.draws) return;
    const DrawState s = st[row];
    const int start = chunk * SAMPLE_CHUNK, n = min(SAMPLE_CHUNK, vocab - start);
    const float* xr = x + (long long)row * vocab + start;
    if (t == 0) last = -1;
    __syncthreads();
    double sum = 0;
    int mine = -1;
    if (d.mx != NEG_INF)
    {
        for (int i = t; i < n; i += blockDim.x)
        {
            float w = draw_weight(xr[i], start + i, d.mx, d.invT, d.nucleus, d.min_p, s);
            if (w != 0.f) { sum += w; mine = start + i; }
        }
    }
    if (mine >= 0) atomicMax(&last, mine);
    sum = block_sum_double(sum);
    if (t == 0)
    {
        csum[row * gridDim.x + chunk] = sum;
        clast[row * gridDim.x + chunk] = last;
    }
}

// Grid (rows), 256 threads: out[2k] the drawn token and out[2k + 1] the mass for drawing rows (the given token or -1,
// and 0, for the others). The chunk holding u · mass is found from the chunks' sums, then the token within it: each
// thread sums a contiguous run, the runs' sums are scanned in double, and the run holding the target walks its tokens.
extern "C" __global__ void __launch_bounds__(256) draw_pick(const float* x, float* out, const DrawState* st, const double* csum,
    const int* clast, const long long* desc, int vocab, int k, int width, int chunks)
{
    PDL_ENTRY();
    __shared__ double sums[256];
    __shared__ double s_rem;
    __shared__ int s_chunk, s_found, s_last;
    const int row = blockIdx.x, t = threadIdx.x;
    float* o = out + (long long)row * width;
    const DrawRow d = draw_row(desc, out, row, width);
    if (!d.draws)
    {
        if (t == 0) { o[2 * k] = (d.prm[6] & 2) ? (float)d.prm[7] : -1.f; o[2 * k + 1] = 0.f; }
        return;
    }
    const double* cs = csum + row * chunks;
    const int* cl = clast + row * chunks;
    if (t == 0)
    {
        double mass = 0;
        int lastAny = -1;
        for (int c = 0; c < chunks; c++) { mass += cs[c]; lastAny = max(lastAny, cl[c]); }
        double target = __hiloint2double(d.prm[2], d.prm[1]) * mass, acc = 0;
        int chosen = -1;
        for (int c = 0; c < chunks && chosen < 0; c++)
        {
            if (cs[c] > 0 && target < acc + cs[c]) chosen = c;
            else acc += cs[c];
        }
        s_chunk = chosen;
        s_rem = target - acc;
        s_found = -1;
        s_last = lastAny;
        o[2 * k + 1] = (float)mass;
    }
    __syncthreads();
    const int chunk = s_chunk;
    if (chunk >= 0)
    {
        const DrawState s = st[row];
        const int start = chunk * SAMPLE_CHUNK, n = min(SAMPLE_CHUNK, vocab - start);
        const float* xr = x + (long long)row * vocab + start;
        const auto [lo, hi] = thread_run(n);
        double mine = 0;
        int last = -1;
        for (int i = lo; i < hi; i++)
        {
            float w = draw_weight(xr[i], start + i, d.mx, d.invT, d.nucleus, d.min_p, s);
            if (w != 0.f) { mine += w; last = i; }
        }
        sums[t] = mine;
        __syncthreads();
        for (int off = 1; off < blockDim.x; off <<= 1)
        {
            double v = t >= off ? sums[t - off] : 0.0;
            __syncthreads();
            sums[t] += v;
            __syncthreads();
        }
        double rem = s_rem, before = t > 0 ? sums[t - 1] : 0.0;
        if (mine > 0 && rem >= before && rem < sums[t])
        {
            double r = rem - before;
            int pick = last;
            for (int i = lo; i < hi; i++)
            {
                float w = draw_weight(xr[i], start + i, d.mx, d.invT, d.nucleus, d.min_p, s);
                if (w == 0.f) continue;
                r -= w;
                if (r < 0) { pick = i; break; }
            }
            s_found = start + pick;
        }
        __syncthreads();
        if (t == 0 && s_found < 0) s_found = cl[chunk];   // the target past the chunk's recomputed sum (rounding)
    }
    if (t == 0) o[2 * k] = (float)(s_found >= 0 ? s_found : s_last);
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
