using Pagoda.Backends;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>One kernel argument: 8 bytes holding a device pointer, an int or a float.</summary>
internal readonly struct KernelArg(ulong bits)
{
    public ulong Bits { get; } = bits;
    public static implicit operator KernelArg(ulong v) => new(v);
    public static implicit operator KernelArg(int v) => new((uint)v);
    public static implicit operator KernelArg(long v) => new((ulong)v);
    public static implicit operator KernelArg(float v) => new(BitConverter.SingleToUInt32Bits(v));
}

/// <summary>The compiled module for one element type and its kernel handles.</summary>
internal sealed unsafe class Kernels : IDisposable
{
    private readonly CudaModuleHandle _module;

    public Kernels(CudaDevice device, DType elem, string? cacheDir)
    {
        string[] defines = elem switch
        {
            DType.BF16 => ["ELEM_BF16"],
            DType.F16 => ["ELEM_F16"],
            _ => [],
        };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var (cubin, cached, path) = KernelCompiler.Compile(device, defines, cacheDir);
        CompileInfo = $"{(cached ? "loaded" : "compiled")} {path} ({cubin.Length} bytes, {sw.ElapsedMilliseconds} ms)";
        fixed (byte* c = cubin)
        {
            Driver.Check(Driver.cuModuleLoadData(out nint m, c), "cuModuleLoadData");
            _module = new CudaModuleHandle(m);
        }
        nint F(string name)
        {
            Driver.Check(Driver.cuModuleGetFunction(out nint f, _module.Module, name), $"cuModuleGetFunction({name})");
            return f;
        }
        ProgrammaticLaunch = device.Major >= 9;
        ConvertFromF32 = F("convert_from_f32");
        ConvertFromBf16 = F("convert_from_bf16");
        ConvertFromF16 = F("convert_from_f16");
        ToF32 = F("to_f32");
        FromF32 = F("from_f32");
        Embedding = F("embedding");
        EmbeddingAdd = F("embedding_add");
        RmsNorm = F("rms_norm");
        AddRmsNorm = F("add_rms_norm");
        LayerNorm = F("layer_norm");
        Add = F("add");
        SiluMul = F("silu_mul");
        GeluTanhMul = F("gelu_tanh_mul");
        Scale = F("scale");
        SoftCap = F("soft_cap");
        MoeRoute = F("moe_route");
        MoeAlign = F("moe_align");
        MoeGroupedGemv = F("moe_grouped_gemv");
        MoeActivation = F("moe_activation");
        MoeCombine = F("moe_combine");
        MoeTranspose = F("moe_transpose");
        Relu = F("relu");
        BiasAdd = F("bias_add");
        Rope = F("rope");
        RopeStoreKv = F("rope_store_kv");
        QkvRopeStore = F("qkv_rope_store");
        SiluMulStacked = F("silu_mul_stacked");
        Gemm = elem == DType.F32 ? new nint[6] : [F("gemv_n8"), F("gemv_n16"), F("gemv_n32"), F("gemm_split_n64"),
            F("gemm_full_n64"), F("gemm_full_n128")];
        Attention = [F("attention_g8_r1_d8"), F("attention_g8_r1_d16"), F("attention_g16_r1_d8"), F("attention_g16_r1_d16"),
            F("attention_g16_r4_d8"), F("attention_g16_r4_d16"),
            .. elem == DType.F32 ? new nint[4] : [F("attention_mma_d64"), F("attention_mma_d128"), F("attention_mma_decode_d64"), F("attention_mma_decode_d128")]];
        SampleChunks = F("sample_chunks");
        TopKMerge = F("topk_merge");
        SamplingStage = F("sampling_stage");
        DrawInit = F("draw_init");
        NucleusHist = F("nucleus_hist");
        NucleusSelect = F("nucleus_select");
        NucleusTies = F("nucleus_ties");
        NucleusTiePick = F("nucleus_tie_pick");
        DrawSums = F("draw_sums");
        DrawPick = F("draw_pick");
        SamplingRanks = F("sampling_ranks");
    }

    public string CompileInfo { get; }
    public nint ConvertFromF32 { get; }
    public nint ConvertFromBf16 { get; }
    public nint ConvertFromF16 { get; }
    public nint ToF32 { get; }
    public nint FromF32 { get; }
    public nint Embedding { get; }
    public nint EmbeddingAdd { get; }
    public nint RmsNorm { get; }
    public nint AddRmsNorm { get; }
    public nint LayerNorm { get; }
    public nint Add { get; }
    public nint SiluMul { get; }
    public nint GeluTanhMul { get; }
    public nint Scale { get; }
    public nint SoftCap { get; }
    public nint MoeRoute { get; }
    public nint MoeAlign { get; }
    public nint MoeGroupedGemv { get; }
    public nint MoeActivation { get; }
    public nint MoeCombine { get; }
    public nint MoeTranspose { get; }
    public nint Relu { get; }
    public nint BiasAdd { get; }
    public nint Rope { get; }
    public nint RopeStoreKv { get; }
    public nint QkvRopeStore { get; }
    public nint SiluMulStacked { get; }
    /// <summary>
    /// Fixed-order GEMM variants (16-bit types only, else 0): the decode form for up to 8, 16, 32 tokens, the
    /// split form with 64x64 tiles, the full form with 64x64 and 128x128 tiles. Every variant gives identical bits.
    /// </summary>
    public nint[] Gemm { get; }
    /// <summary>
    /// Paged attention variants: on CUDA cores (row groups, rows per group, dims per thread) 8·1 d8, 8·1 d16,
    /// 16·1 d8, 16·1 d16, 16·4 d8, 16·4 d16; then on tensor cores (16-bit types only, else 0) head_dim 64, 128, and the decode forms of both.
    /// </summary>
    public nint[] Attention { get; }
    public nint SampleChunks { get; }
    public nint TopKMerge { get; }
    public nint SamplingStage { get; }
    public nint DrawInit { get; }
    public nint NucleusHist { get; }
    public nint NucleusSelect { get; }
    public nint NucleusTies { get; }
    public nint NucleusTiePick { get; }
    public nint DrawSums { get; }
    public nint DrawPick { get; }
    public nint SamplingRanks { get; }

    /// <summary>
    /// Whether kernels launch with programmatic stream serialization (sm_90+): each may
    /// start while the previous one finishes; every kernel waits for its predecessor (griddepcontrol.wait)
    /// before it touches activations, so only weight prefetch runs ahead.
    /// </summary>
    public bool ProgrammaticLaunch { get; }

    /// <summary>Enqueues <paramref name="function"/> on <paramref name="stream"/>.</summary>
    public void Launch(nint function, string name, nint stream, uint gridX, uint gridY, uint gridZ, uint block,
        params ReadOnlySpan<KernelArg> args) => Launch(function, name, stream, gridX, gridY, gridZ, block, 0, args);

    /// <summary>Enqueues <paramref name="function"/> with <paramref name="sharedBytes"/> of dynamic shared memory.</summary>
    public void Launch(nint function, string name, nint stream, uint gridX, uint gridY, uint gridZ, uint block, uint sharedBytes,
        params ReadOnlySpan<KernelArg> args)
    {
        if (gridX == 0 || gridY == 0 || gridZ == 0)
            return; // an empty batch (e.g. no rows to gather) launches nothing
        ulong* values = stackalloc ulong[args.Length];
        void** pointers = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            values[i] = args[i].Bits;
            pointers[i] = &values[i];
        }
        int status;
        if (ProgrammaticLaunch)
        {
            var attr = new Driver.LaunchAttribute { Id = Driver.LaunchAttributeProgrammaticStreamSerialization, Value = 1 };
            var config = new Driver.LaunchConfig
            {
                GridX = gridX, GridY = gridY, GridZ = gridZ, BlockX = block, BlockY = 1, BlockZ = 1, SharedBytes = sharedBytes,
                Stream = stream, Attributes = &attr, NumAttributes = 1,
            };
            status = Driver.cuLaunchKernelEx(&config, function, pointers, null);
        }
        else
        {
            status = Driver.cuLaunchKernel(function, gridX, gridY, gridZ, block, 1, 1, sharedBytes, stream, pointers, null);
        }
        if (status != 0)
            throw new CudaException($"cuLaunchKernel({name})", status, Driver.Describe(status));
    }

    /// <inheritdoc />
    public void Dispose() => _module.Dispose();
}
