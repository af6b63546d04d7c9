using System.Runtime.InteropServices;
using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>
/// `--load-format dummy`: random weights of whatever shape the model asks for, made on demand from
/// config.json alone (vLLM's option), so a real model shape can be benchmarked without its files.
/// Values are uniform in [-1e-3, 1e-3] from a fixed seed, like vLLM's dummy initialisation.
/// </summary>
public sealed unsafe class DummyWeights(string folder, DType dtype, ulong seed = 0x9E3779B97F4A7C15UL) : ITensorFile
{
    private readonly Dictionary<string, TensorInfo> _tensors = new();
    private readonly Dictionary<string, nint> _data = new();
    private ulong _state = seed;

    /// <inheritdoc />
    public string FilePath { get; } = Path.Combine(folder, "(dummy weights)");

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>The bytes made so far.</summary>
    public long TotalBytes => _tensors.Values.Sum(t => t.Length);

    /// <summary>Makes (once) a tensor of this name and shape.</summary>
    public TensorInfo GetOrCreate(string name, int[] shape)
    {
        if (_tensors.TryGetValue(name, out var existing))
            return existing;
        long count = shape.Aggregate(1L, (a, b) => a * b);
        long bytes = count * DTypes.SizeOf(dtype);
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 64), 64);
        Fill(p, count);
        var info = new TensorInfo(name, dtype, shape, 0, bytes);
        _tensors[name] = info;
        _data[name] = (nint)p;
        return info;
    }

    /// <inheritdoc />
    public byte* GetPointer(TensorInfo info) => (byte*)_data[info.Name];

    /// <summary>Frees a tensor nothing reads any more (its int8 copy replaced it); asking for it again is an error.</summary>
    public void Release(string name)
    {
        if (_data.Remove(name, out var p))
            NativeMemory.AlignedFree((void*)p);
    }

    private void Fill(byte* p, long count)
    {
        for (long i = 0; i < count; i++)
        {
            // xorshift64*: fast, deterministic, good enough for filler values.
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            ulong r = _state * 0x2545F4914F6CDD1DUL;
            float v = ((r >> 40) / (float)(1 << 24) * 2f - 1f) * 1e-3f;
            switch (dtype)
            {
                case DType.F32: ((float*)p)[i] = v; break;
                case DType.F16: ((Half*)p)[i] = (Half)v; break;
                default: ((ushort*)p)[i] = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16); break;
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _data.Values)
            NativeMemory.AlignedFree((void*)p);
        _data.Clear();
    }
}
