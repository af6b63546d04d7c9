// Mixture-of-experts layers (appended to kernels.cu by the compiler), in five launches whose grids depend only on
// the batch's size, so decode CUDA graphs capture them: route each token (top-k experts and weights), sort the
// (token, rank) pairs by expert, the gate/up products, the activation, the down products, and the weighted sum.
// A pair p = token * k + rank keeps its own rows of every scratch buffer; the sort only decides which block
// computes it, and every value is computed the same way whichever block that is.
//
// The two products are grouped per expert: block (e, row tile) walks expert e's pairs, so an expert's weight rows
// are read from memory once per step however many tokens chose it (later pairs find them in L1/L2), and an
// expert no token chose costs one empty block. Each warp owns one output row; its lanes take 8 consecutive
// elements of the row at a time (16-byte loads for 16-bit types) and the warp's sum is a fixed shuffle tree.

#define MOE_ROWS 8   // output rows per block: one per warp of 256 threads

// Router: one warp per token. scoring 0: softmax over all experts, then the top k (Mixtral, Qwen3-MoE); 1: the top k
// logits, then a softmax over them (gpt-oss). Ties go to the lower expert index. renorm divides by the k weights' sum.
extern "C" __global__ void moe_route(const T* logits, int* ids, float* weights, int num_experts, int k, int scoring, int renorm)
{
    PDL_ENTRY();
    const int lane = threadIdx.x, t = blockIdx.x;
    const T* row = logits + (long long)t * num_experts;
    float mx = NEG_INF;
    for (int e = lane; e < num_experts; e += 32) mx = fmaxf(mx, ld(row[e]));
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.f;
    if (scoring == 0)
    {
        for (int e = lane; e < num_experts; e += 32) sum += expf(ld(row[e]) - mx);
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    }
    float picked[8];   // k <= 8 (checked on the host)
    int chosen[8];
    for (int r = 0; r < k; r++)
    {
        // The best remaining expert: the highest score, then the lowest index.
        float best = NEG_INF;
        int bi = 0x7fffffff;
        for (int e = lane; e < num_experts; e += 32)
        {
            bool taken = false;
            for (int q = 0; q < r; q++) taken |= chosen[q] == e;
            float s = ld(row[e]);
            if (!taken && (s > best || (s == best && e < bi))) { best = s; bi = e; }
        }
        for (int o = 16; o > 0; o >>= 1)
        {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ob > best || (ob == best && oi < bi)) { best = ob; bi = oi; }
        }
        chosen[r] = bi;
        picked[r] = scoring == 0 ? expf(best - mx) / sum : best;
    }
    if (lane != 0) return;
    if (scoring == 1)
    {
        // Softmax over the chosen logits (picked[0] is their max; kept aside, as the loop overwrites picked[0]).
        float top = picked[0], s = 0.f;
        for (int r = 0; r < k; r++) { picked[r] = expf(picked[r] - top); s += picked[r]; }
        for (int r = 0; r < k; r++) picked[r] /= s;
    }
    if (renorm)
    {
        float s = 0.f;
        for (int r = 0; r < k; r++) s += picked[r];
        for (int r = 0; r < k; r++) picked[r] /= s;
    }
    for (int r = 0; r < k; r++) { ids[t * k + r] = chosen[r]; weights[t * k + r] = picked[r]; }
}

// Counting sort of the pairs by expert, one block: offsets [E + 1] (expert e's pairs are sorted[offsets[e] ..
// offsets[e + 1])), cursor [E] scratch. The order within an expert does not matter (each pair is computed alone).
extern "C" __global__ void moe_align(const int* ids, int pairs, int num_experts, int* offsets, int* cursor, int* sorted)
{
    PDL_ENTRY();
    for (int e = threadIdx.x; e < num_experts; e += blockDim.x) cursor[e] = 0;
    __syncthreads();
    for (int p = threadIdx.x; p < pairs; p += blockDim.x) atomicAdd(&cursor[ids[p]], 1);
    __syncthreads();
    if (threadIdx.x == 0)
    {
        int run = 0;
        for (int e = 0; e < num_experts; e++) { offsets[e] = run; int c = cursor[e]; cursor[e] = run; run += c; }
        offsets[num_experts] = run;
    }
    __syncthreads();
    for (int p = threadIdx.x; p < pairs; p += blockDim.x) sorted[atomicAdd(&cursor[ids[p]], 1)] = p;
}

// One row's dot product with one input row, by a warp: lanes take 8 consecutive elements at a time (cols % 8 == 0).
__device__ __forceinline__ float moe_dot(const T* w, const T* x, int cols, int lane)
{
    float acc = 0.f;
    for (int c = lane * 8; c < cols; c += 256)
    {
        float wf[8], xf[8];
        Vec8<T>::load(w + c, wf);
        Vec8<T>::load(x + c, xf);
#pragma unroll
        for (int e = 0; e < 8; e++) acc = fmaf(wf[e], xf[e], acc);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

// out[p, r] = W_e[r] · in[row(p)] + bias_e[r] for each pair p of expert e = blockIdx.x and row r of this block's tile.
// W_e is rows [0, split) of first[e] and rows [split, out_cols) of second[e] (gate then up; second may equal first
// with split = out_cols); in_row_div maps a pair to its input row (k for the tokens' x, 1 for the pairs' own rows).
extern "C" __global__ void __launch_bounds__(256) moe_grouped_gemv(const T* in, int in_row_div, const int* sorted, const int* offsets,
    const unsigned long long* first, const unsigned long long* second, int split, const unsigned long long* bias, T* out,
    int in_cols, int out_cols)
{
    PDL_ENTRY();
    const int e = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.y * MOE_ROWS + warp;
    const int begin = offsets[e], end = offsets[e + 1];
    if (begin == end || r >= out_cols) return;
    const T* w = r < split ? (const T*)first[e] + (long long)r * in_cols : (const T*)second[e] + (long long)(r - split) * in_cols;
    const float b = bias && bias[e] ? ld(((const T*)bias[e])[r]) : 0.f;
    for (int i = begin; i < end; i++)
    {
        int p = sorted[i];
        float acc = moe_dot(w, in + (long long)(p / in_row_div) * in_cols, in_cols, lane);
        if (lane == 0) out[(long long)p * out_cols + r] = st(acc + b);
    }
}

// act [pairs, ff] from gate_up [pairs, 2 ff] (gate columns, then up): 0 silu(gate) · up; 1 gpt-oss's clamped SwiGLU,
// g = min(gate, limit), u = clamp(up, -limit, limit), (u + 1) · g · sigmoid(alpha · g).
extern "C" __global__ void moe_activation(const T* gate_up, T* act, long long n, int ff, int kind, float alpha, float limit)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        long long p = i / ff;
        int j = (int)(i - p * ff);
        float g = ld(gate_up[p * 2 * ff + j]), u = ld(gate_up[p * 2 * ff + ff + j]);
        float a;
        if (kind == 0) a = g / (1.f + expf(-g)) * u;
        else
        {
            g = fminf(g, limit);
            u = fminf(fmaxf(u, -limit), limit);
            a = (u + 1.f) * (g * (1.f / (1.f + expf(-(g * alpha)))));
        }
        act[i] = st(a);
    }
}

// dst[t] = Σ_r weights[t k + r] · ys[t k + r], products rounded then added from rank 0 up (the CPU's order).
extern "C" __global__ void moe_combine(const T* ys, const float* weights, T* dst, int k, int cols)
{
    PDL_ENTRY();
    const int t = blockIdx.x;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
    {
        float acc = 0.f;
        for (int r = 0; r < k; r++) acc += weights[t * k + r] * ld(ys[((long long)t * k + r) * cols + c]);
        dst[(long long)t * cols + c] = st(acc);
    }
}

// gpt-oss's stacked [E, rows_in, cols_in] ([in, out]) experts to [E, cols_in, rows_in] Linear rows, once at load;
// interleaved: out row r < cols_in / 2 takes stored column 2r (gate r), the rest 2(r - cols_in / 2) + 1 (up).
extern "C" __global__ void moe_transpose(const T* src, T* dst, int rows_in, int cols_in, int interleaved)
{
    PDL_ENTRY();
    const long long e = blockIdx.y;
    const int half = cols_in / 2;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (long long)rows_in * cols_in; i += (long long)gridDim.x * blockDim.x)
    {
        int r = (int)(i / rows_in), c = (int)(i - (long long)r * rows_in);   // dst [r, c] = src [c, col(r)]
        int col = !interleaved ? r : (r < half ? 2 * r : 2 * (r - half) + 1);
        dst[e * rows_in * cols_in + i] = src[e * rows_in * cols_in + (long long)c * cols_in + col];
    }
}
