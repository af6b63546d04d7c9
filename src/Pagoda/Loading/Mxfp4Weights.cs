using System.Runtime.InteropServices;
using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>
/// gpt-oss's released MXFP4 experts (quantization_config.quant_method "mxfp4"), decoded at load into the bfloat16
/// tensors an unquantized checkpoint holds: for every pair NAME_blocks [..., rows, groups, 16] (two e2m1 values a
/// byte, the low nibble first) and NAME_scales [..., rows, groups] (one power of two per 32 values, e8m0: 2^(s - 127)),
/// a tensor NAME of [..., groups · 32, rows], the values' last two dimensions swapped (transformers' layout:
/// gate_up_proj [experts, hidden, 2 · intermediate]). Every value is exact in bfloat16. vLLM computes with the packed
/// values; Pagoda has no MXFP4 kernels yet, so the experts take four times the checkpoint's memory.
/// </summary>
public sealed unsafe class Mxfp4Weights : ITensorFile
{
    private static readonly float[] E2M1 = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];

    private readonly Dictionary<string, TensorInfo> _tensors = new();
    private readonly Dictionary<string, (ITensorFile File, TensorInfo Blocks, TensorInfo Scales)> _sources = new();
    private readonly Dictionary<string, nint> _decoded = new();
    private bool _released;

    /// <summary>Finds the packed pairs among <paramref name="tensors"/> (each with the file holding it).</summary>
    public Mxfp4Weights(string folder, IEnumerable<(ITensorFile File, TensorInfo Info)> tensors)
    {
        FilePath = Path.Combine(folder, "(MXFP4 decoded to bfloat16)");
        var all = tensors.ToDictionary(t => t.Info.Name);
        foreach (var (name, (file, blocks)) in all)
        {
            if (!name.EndsWith("_blocks", StringComparison.Ordinal))
                continue;
            string baseName = name[..^"_blocks".Length];
            if (!all.TryGetValue(baseName + "_scales", out var scales))
                throw new ModelLoadException(file.FilePath, $"'{name}' has no '{baseName}_scales'");
            var s = blocks.Shape;
            if (blocks.DType != DType.U8 || scales.Info.DType != DType.U8 || s.Length < 3 || s[^1] != 16
                || !scales.Info.Shape.SequenceEqual(s[..^1]))
                throw new ModelLoadException(file.FilePath,
                    $"'{name}' [{string.Join(", ", s)}] and its scales [{string.Join(", ", scales.Info.Shape)}] are not MXFP4 (U8 [..., rows, groups, 16] and U8 [..., rows, groups])");
            int rows = s[^3], cols = s[^2] * 32;
            int[] shape = [.. s[..^3], cols, rows];
            long count = shape.Aggregate(1L, (a, b) => a * b);
            _tensors[baseName] = new TensorInfo(baseName, DType.BF16, shape, 0, count * 2);
            _sources[baseName] = (file, blocks, scales.Info);
        }
    }

    /// <inheritdoc />
    public string FilePath { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>Bytes of the tensors decoded and still held.</summary>
    public long DecodedBytes
    {
        get
        {
            lock (_decoded)
                return _decoded.Keys.Sum(n => _tensors[n].Length);
        }
    }

    /// <summary>Decodes a tensor on first use; it stays until <see cref="Release"/> or disposal.</summary>
    public byte* GetPointer(TensorInfo info)
    {
        lock (_decoded)
        {
            if (_released)
                throw new InvalidOperationException($"'{info.Name}': the decoded MXFP4 tensors were released once the model was built");
            if (!_decoded.TryGetValue(info.Name, out nint p))
            {
                var (file, blocks, scales) = _sources[info.Name];
                p = (nint)NativeMemory.Alloc((nuint)info.Length);
                int rows = blocks.Shape[^3], groups = blocks.Shape[^2];
                long matrices = info.NumElements / ((long)rows * groups * 32);
                Decode(file.GetPointer(blocks), file.GetPointer(scales), matrices, rows, groups, (ushort*)p);
                _decoded[info.Name] = p;
            }
            return (byte*)p;
        }
    }

    /// <summary>
    /// Decodes <paramref name="matrices"/> packed [rows, groups · 32] matrices into bfloat16 [groups · 32, rows]
    /// (each transposed), in parallel over matrices and rows.
    /// </summary>
    public static void Decode(byte* blocks, byte* scales, long matrices, int rows, int groups, ushort* dst)
    {
        int cols = groups * 32;
        long bPtr = (nint)blocks, sPtr = (nint)scales, dPtr = (nint)dst;
        Parallel.For(0L, matrices * rows, mr =>
        {
            long m = mr / rows;
            int r = (int)(mr % rows);
            var b = (byte*)bPtr + mr * groups * 16;
            var sc = (byte*)sPtr + mr * groups;
            var d = (ushort*)dPtr + m * cols * rows + r;
            for (int g = 0; g < groups; g++)
            {
                int exponent = sc[g] - 127;
                for (int i = 0; i < 16; i++)
                {
                    byte packed = b[g * 16 + i];
                    int c = g * 32 + 2 * i;
                    d[(long)c * rows] = Bf16(MathF.ScaleB(E2M1[packed & 15], exponent));
                    d[(long)(c + 1) * rows] = Bf16(MathF.ScaleB(E2M1[packed >> 4], exponent));
                }
            }
        });
    }

    // e2m1 times a power of two has one significant bit after the point: the float's top half holds it exactly.
    private static ushort Bf16(float v) => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);

    /// <summary>
    /// Frees every decoded tensor: once a model is built nothing reads them (the CUDA backend holds device copies, the
    /// CPU experts their own transposed ones), and for gpt-oss-20b they are 38 GB of host memory.
    /// </summary>
    public void Release()
    {
        lock (_decoded)
        {
            _released = true;
            foreach (nint p in _decoded.Values)
                NativeMemory.Free((void*)p);
            _decoded.Clear();
        }
    }

    /// <inheritdoc />
    public void Dispose() => Release();
}
