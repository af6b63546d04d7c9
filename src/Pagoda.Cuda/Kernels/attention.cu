// Paged attention (appended to kernels.cu by the compiler). One block of ATT_WARPS warps per
// (query token, head, split): each warp walks keys p = split_start + warp, + ATT_WARPS, ... up to the
// token's own position (causal), reading K and V through the sequence's block table, with an online
// softmax in float32; the warps are merged in shared memory. With several splits (decode over long
// contexts: split-K) each split writes its partial max, sum and output, and attention_combine merges
// them in a fixed order, so results do not depend on how many other sequences share the batch.

#define ATT_WARPS 4
#define ATT_MAXD 8   // head_dim <= 256

extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) paged_attention(
    const T* q, const T* kc, const T* vc, T* out, float* part_acc, float* part_ml,
    const int* block_tables, int max_blocks, const int* seq_of_token, const int* positions,
    int num_heads, int num_kv_heads, int head_dim, int block_size, float scale, int split_len)
{
    int tok = blockIdx.x, head = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int seq = seq_of_token[tok], pos = positions[tok];
    const int* bt = block_tables + (long long)seq * max_blocks;
    int kvw = num_kv_heads * head_dim;
    int kvoff = (head / (num_heads / num_kv_heads)) * head_dim;
    const T* qrow = q + ((long long)tok * num_heads + head) * head_dim;

    float qv[ATT_MAXD], acc[ATT_MAXD];
#pragma unroll
    for (int i = 0; i < ATT_MAXD; i++)
    {
        int d = lane + 32 * i;
        qv[i] = d < head_dim ? ld(qrow[d]) : 0.f;
        acc[i] = 0.f;
    }
    float m = NEG_INF, l = 0.f;
    int begin = split * split_len, end = min(pos + 1, begin + split_len);
    for (int p = begin + warp; p < end; p += ATT_WARPS)
    {
        long long slot = (long long)bt[p / block_size] * block_size + p % block_size;
        const T* krow = kc + slot * kvw + kvoff;
        const T* vrow = vc + slot * kvw + kvoff;
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < ATT_MAXD; i++)
        {
            int d = lane + 32 * i;
            if (d < head_dim) s += qv[i] * ld(krow[d]);
        }
        s = warp_sum(s) * scale;
        float mn = fmaxf(m, s);
        float corr = expf(m - mn), e = expf(s - mn);
        l = l * corr + e;
#pragma unroll
        for (int i = 0; i < ATT_MAXD; i++)
        {
            int d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < head_dim ? e * ld(vrow[d]) : 0.f);
        }
        m = mn;
    }

    __shared__ float sm[ATT_WARPS], sl[ATT_WARPS];
    __shared__ float sacc[ATT_WARPS][32 * ATT_MAXD];
    if (lane == 0) { sm[warp] = m; sl[warp] = l; }
#pragma unroll
    for (int i = 0; i < ATT_MAXD; i++) sacc[warp][lane + 32 * i] = acc[i];
    __syncthreads();

    float M = NEG_INF;
    for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, sm[w]);
    float L = 0.f;
    for (int w = 0; w < ATT_WARPS; w++) L += sm[w] == NEG_INF ? 0.f : sl[w] * expf(sm[w] - M);
    long long item = ((long long)tok * num_heads + head) * splits + split;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
    {
        float o = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) o += sm[w] == NEG_INF ? 0.f : sacc[w][d] * expf(sm[w] - M);
        if (splits == 1) out[((long long)tok * num_heads + head) * head_dim + d] = st(o / L);
        else part_acc[item * head_dim + d] = o;
    }
    if (splits > 1 && threadIdx.x == 0) { part_ml[item * 2] = M; part_ml[item * 2 + 1] = L; }
}

// Merges the splits of each (token, head) in split order: one block per (token, head).
extern "C" __global__ void attention_combine(const float* part_acc, const float* part_ml, T* out, int num_heads, int head_dim, int splits)
{
    long long th = (long long)blockIdx.x * num_heads + blockIdx.y;
    const float* ml = part_ml + th * splits * 2;
    float M = NEG_INF;
    for (int s = 0; s < splits; s++) M = fmaxf(M, ml[2 * s]);
    float L = 0.f;
    for (int s = 0; s < splits; s++) L += ml[2 * s] == NEG_INF ? 0.f : ml[2 * s + 1] * expf(ml[2 * s] - M);
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
    {
        float o = 0.f;
        for (int s = 0; s < splits; s++)
            o += ml[2 * s] == NEG_INF ? 0.f : part_acc[(th * splits + s) * head_dim + d] * expf(ml[2 * s] - M);
        out[th * head_dim + d] = st(o / L);
    }
}
