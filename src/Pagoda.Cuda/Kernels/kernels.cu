// Pagoda's CUDA kernels, compiled by NVRTC at start-up for the device's architecture. ELEM_BF16 or
// ELEM_F16 selects the activation / weight element type T; without either T is float. Arithmetic is
// float32 throughout; T is only the storage type.

typedef unsigned short u16;
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float bf16_to_f32(u16 v) { return __uint_as_float(((unsigned)v) << 16); }
__device__ __forceinline__ u16 f32_to_bf16(float f)
{
#if __CUDA_ARCH__ >= 800
    // One instruction instead of seven; the same round-to-nearest-even (a NaN becomes the canonical one).
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#else
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);   // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                         // round to nearest even
    return (u16)(u >> 16);
#endif
}
__device__ __forceinline__ float f16_to_f32(u16 v) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v)); return f; }
__device__ __forceinline__ u16 f32_to_f16(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }

#if defined(ELEM_BF16)
typedef u16 T;
__device__ __forceinline__ float ld(T v) { return bf16_to_f32(v); }
__device__ __forceinline__ T st(float f) { return f32_to_bf16(f); }
#elif defined(ELEM_F16)
typedef u16 T;
__device__ __forceinline__ float ld(T v) { return f16_to_f32(v); }
__device__ __forceinline__ T st(float f) { return f32_to_f16(f); }
#else
typedef float T;
__device__ __forceinline__ float ld(T v) { return v; }
__device__ __forceinline__ T st(float f) { return f; }
#endif

// Programmatic dependent launch (sm_90+; the host launches every kernel so): a kernel may be scheduled while
// its predecessor on the stream still runs. Every kernel first waits for that predecessor to complete (its
// writes visible), then lets its own successor be scheduled, so at most one kernel runs ahead and only
// reads of constant weights (the GEMV prefetch) may come before the wait.
#if __CUDA_ARCH__ >= 900
#define PDL_WAIT() asm volatile("griddepcontrol.wait;\n" ::: "memory")
#define PDL_TRIGGER() asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory")
#else
#define PDL_WAIT() do { } while (0)
#define PDL_TRIGGER() do { } while (0)
#endif
#define PDL_ENTRY() do { PDL_WAIT(); PDL_TRIGGER(); } while (0)

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v)
{
    __shared__ float partial[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        float s = lane < warps ? partial[lane] : 0.f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    float r = total;
    __syncthreads();
    return r;
}

// ---- weight conversion (stored dtype -> T) and output conversion (T -> float) ----
extern "C" __global__ void convert_from_f32(const float* src, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = st(src[i]);
}
extern "C" __global__ void convert_from_bf16(const u16* src, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = st(bf16_to_f32(src[i]));
}
extern "C" __global__ void convert_from_f16(const u16* src, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = st(f16_to_f32(src[i]));
}
extern "C" __global__ void to_f32(const T* src, float* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = ld(src[i]);
}
extern "C" __global__ void from_f32(const float* src, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = st(src[i]);
}

// ---- embedding and row gathers: one block per output row ----
extern "C" __global__ void embedding(const T* table, const int* ids, T* dst, int cols)
{
    PDL_ENTRY();
    const T* src = table + (long long)ids[blockIdx.x] * cols;
    T* out = dst + (long long)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = src[c];
}
extern "C" __global__ void embedding_add(const T* table, const int* ids, int offset, T* dst, int cols)
{
    PDL_ENTRY();
    const T* src = table + (long long)(ids[blockIdx.x] + offset) * cols;
    T* out = dst + (long long)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = st(ld(out[c]) + ld(src[c]));
}

// ---- norms: one block per group of `cols` elements ----
extern "C" __global__ void rms_norm(const T* x, const T* w, T* dst, int cols, float eps)
{
    PDL_ENTRY();
    const T* row = x + (long long)blockIdx.x * cols;
    T* out = dst + (long long)blockIdx.x * cols;
    float ss = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) { float v = ld(row[c]); ss += v * v; }
    ss = block_sum(ss);
    float inv = 1.f / sqrtf(ss / cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = st(ld(w[c]) * (ld(row[c]) * inv));
}

// residual += delta; dst = rms_norm(residual) * w   (the fused pre-norm of the next sub-layer)
extern "C" __global__ void add_rms_norm(T* residual, const T* delta, const T* w, T* dst, int cols, float eps)
{
    PDL_ENTRY();
    T* row = residual + (long long)blockIdx.x * cols;
    const T* d = delta + (long long)blockIdx.x * cols;
    T* out = dst + (long long)blockIdx.x * cols;
    float ss = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
    {
        T s = st(ld(row[c]) + ld(d[c]));
        row[c] = s;
        float v = ld(s);
        ss += v * v;
    }
    ss = block_sum(ss);
    float inv = 1.f / sqrtf(ss / cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = st(ld(w[c]) * (ld(row[c]) * inv));
}

extern "C" __global__ void layer_norm(const T* x, const T* w, const T* b, T* dst, int cols, float eps)
{
    PDL_ENTRY();
    const T* row = x + (long long)blockIdx.x * cols;
    T* out = dst + (long long)blockIdx.x * cols;
    float s = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += ld(row[c]);
    float mean = block_sum(s) / cols;
    float v = 0.f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) { float d = ld(row[c]) - mean; v += d * d; }
    float inv = 1.f / sqrtf(block_sum(v) / cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = st((ld(row[c]) - mean) * inv * ld(w[c]) + ld(b[c]));
}

// ---- elementwise ----
extern "C" __global__ void add(const T* a, const T* b, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) dst[i] = st(ld(a[i]) + ld(b[i]));
}
// Gemma's GeGLU: gelu(gate) (the tanh approximation, as torch's gelu(approximate="tanh")) * up.
extern "C" __global__ void gelu_tanh_mul(const T* gate, const T* up, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float g = ld(gate[i]);
        float inner = 0.7978845608028654f * (g + 0.044715f * g * g * g);
        dst[i] = st(0.5f * g * (1.f + tanhf(inner)) * ld(up[i]));
    }
}

// x *= factor (Gemma's embedding normalizer, √hidden).
extern "C" __global__ void scale(T* x, float factor, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] = st(ld(x[i]) * factor);
}

// x = cap * tanh(x / cap) (Gemma 2's final logit soft-capping), before sampling reads the logits.
extern "C" __global__ void soft_cap(T* x, float cap, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] = st(tanhf(ld(x[i]) / cap) * cap);
}

extern "C" __global__ void silu_mul(const T* gate, const T* up, T* dst, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float g = ld(gate[i]);
        dst[i] = st(g / (1.f + expf(-g)) * ld(up[i]));
    }
}
extern "C" __global__ void relu(T* x, long long n)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) x[i] = st(fmaxf(ld(x[i]), 0.f));
}
extern "C" __global__ void bias_add(T* x, const T* bias, long long n, int cols)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) x[i] = st(ld(x[i]) + ld(bias[i % cols]));
}

// ---- rotary embedding, NeoX halves; one block per token ----
// Element i of a head pairs with i + half for i < half = rotary_dim / 2 (half = head_dim / 2 unless the rotary is
// partial: the elements from 2 half on pass through); cos and sin are multiplied by the attention factor
// (YaRN, LongRoPE; 1 otherwise), as transformers builds its tables.
extern "C" __global__ void rope(T* x, const int* positions, const float* inv_freq, int width, int head_dim, int half,
    float factor)
{
    PDL_ENTRY();
    float pos = (float)positions[blockIdx.x];
    T* row = x + (long long)blockIdx.x * width;
    for (int j = threadIdx.x; j < width / head_dim * half; j += blockDim.x)
    {
        int h = j / half, i = j % half;
        float angle = pos * inv_freq[i];
        float c = cosf(angle) * factor, s = sinf(angle) * factor;
        T* head = row + h * head_dim;
        float a = ld(head[i]), b = ld(head[i + half]);
        head[i] = st(a * c - b * s);
        head[i + half] = st(b * c + a * s);
    }
}

// RoPE on k fused with the paged write of k and v: one block per token.
extern "C" __global__ void rope_store_kv(const T* k, const T* v, T* kc, T* vc, const int* slots, const int* positions,
    const float* inv_freq, int width, int head_dim, int rotate)
{
    PDL_ENTRY();
    long long slot = slots[blockIdx.x];
    const T* ks = k + (long long)blockIdx.x * width;
    const T* vs = v + (long long)blockIdx.x * width;
    T* kd = kc + slot * width;
    T* vd = vc + slot * width;
    for (int c = threadIdx.x; c < width; c += blockDim.x) vd[c] = vs[c];
    if (!rotate)
    {
        for (int c = threadIdx.x; c < width; c += blockDim.x) kd[c] = ks[c];
        return;
    }
    int half = head_dim / 2;
    float pos = (float)positions[blockIdx.x];
    for (int j = threadIdx.x; j < width / 2; j += blockDim.x)
    {
        int h = j / half, i = j % half;
        float angle = pos * inv_freq[i];
        float c = cosf(angle), s = sinf(angle);
        float a = ld(ks[h * head_dim + i]), b = ld(ks[h * head_dim + i + half]);
        kd[h * head_dim + i] = st(a * c - b * s);
        kd[h * head_dim + i + half] = st(b * c + a * s);
    }
}

// After the stacked qkv GEMM: bias, NeoX RoPE on q and k, q to its buffer, k and v to the paged pool.
// One block per token; each thread handles rotation pairs of q and k heads, then plain v columns.
// half and factor as for rope(); the pass-through elements of a partial rotary are copied (with their bias).
extern "C" __global__ void qkv_rope_store(const T* qkv, const T* bias, T* q, T* kc, T* vc, const int* slots,
    const int* positions, const float* inv_freq, int num_heads, int num_kv_heads, int head_dim, int half, float factor)
{
    PDL_ENTRY();
    int qw = num_heads * head_dim, kw = num_kv_heads * head_dim, width = qw + 2 * kw;
    long long slot = slots[blockIdx.x];
    float pos = (float)positions[blockIdx.x];
    const T* row = qkv + (long long)blockIdx.x * width;
    T* qd = q + (long long)blockIdx.x * qw;
    T* kd = kc + slot * kw;
    T* vd = vc + slot * kw;
    int pairs = (num_heads + num_kv_heads) * half;
    for (int j = threadIdx.x; j < pairs; j += blockDim.x)
    {
        int h = j / half, i = j % half;
        int c0 = h * head_dim + i, c1 = c0 + half;             // columns within qkv (k heads follow q heads)
        float a = ld(row[c0]), b = ld(row[c1]);
        if (bias) { a = ld(st(a + ld(bias[c0]))); b = ld(st(b + ld(bias[c1]))); }
        float angle = pos * inv_freq[i];
        float c = cosf(angle) * factor, s = sinf(angle) * factor;
        T ra = st(a * c - b * s), rb = st(b * c + a * s);
        if (h < num_heads) { qd[c0] = ra; qd[c1] = rb; }
        else { kd[c0 - qw] = ra; kd[c1 - qw] = rb; }
    }
    int pass = head_dim - 2 * half;
    for (int j = threadIdx.x; j < (num_heads + num_kv_heads) * pass; j += blockDim.x)
    {
        int h = j / pass, c0 = h * head_dim + 2 * half + j % pass;
        T v = bias ? st(ld(row[c0]) + ld(bias[c0])) : row[c0];
        if (h < num_heads) qd[c0] = v;
        else kd[c0 - qw] = v;
    }
    for (int c = threadIdx.x; c < kw; c += blockDim.x)
    {
        int col = qw + kw + c;
        vd[c] = bias ? st(ld(row[col]) + ld(bias[col])) : row[col];
    }
}

// silu(gate) * up where gate and up are the two halves of each row of the stacked gate/up output.
extern "C" __global__ void silu_mul_stacked(const T* gate_up, T* dst, long long n, int cols)
{
    PDL_ENTRY();
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        long long r = i / cols;
        int c = (int)(i - r * cols);
        const T* row = gate_up + r * 2 * cols;
        float g = ld(row[c]);
        dst[i] = st(g / (1.f + expf(-g)) * ld(row[cols + c]));
    }
}
