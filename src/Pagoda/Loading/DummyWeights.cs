using Pagoda.Backends;
using Pagoda.Backends.Cpu;

namespace Pagoda.Loading;

/// <summary>
/// `--load-format dummy`: random weights of whatever shape the model asks for, made on demand from
/// config.json alone (vLLM's option), so a real model shape can be benchmarked without its files.
/// Values are uniform in [-1e-3, 1e-3] from a fixed seed, like vLLM's dummy initialisation. Each value
/// is a hash of (seed, tensor name, index), so tensors are filled in parallel chunks and the values do
/// not depend on the order tensors are asked for; a tensor-parallel rank's shard (rows, columns, runs) is made alone,
/// with the values the whole tensor holds there.
/// </summary>
public sealed unsafe class DummyWeights(string folder, DType dtype, ulong seed = 0x9E3779B97F4A7C15UL) : IMadeWeights
{
    private readonly Dictionary<string, TensorInfo> _tensors = new();
    private readonly Dictionary<string, nint> _data = new();
    private readonly Dictionary<string, List<nint>> _parts = new();   // shards made without their whole tensor

    /// <inheritdoc />
    public string FilePath { get; } = Path.Combine(folder, "(dummy weights)");

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>Makes (once) a tensor of this name and shape.</summary>
    public TensorInfo GetOrCreate(string name, int[] shape)
    {
        if (_tensors.TryGetValue(name, out var existing))
            return existing;
        long count = shape.Aggregate(1L, (a, b) => a * b);
        long bytes = count * DTypes.SizeOf(dtype);
        // Huge pages: decode reads every weight once per token (see HugePageMemory).
        var p = HugePageMemory.Allocate((nuint)bytes);
        Fill(p, 1, count, 0, count, TensorSeed(name));
        var info = new TensorInfo(name, dtype, shape, 0, bytes);
        _tensors[name] = info;
        _data[name] = (nint)p;
        return info;
    }

    /// <inheritdoc />
    public byte* GetPointer(TensorInfo info) => (byte*)_data[info.Name];

    /// <inheritdoc />
    public HostWeight MakeRuns(string name, int[] shape, long runLength, long first, long count, int[] resultShape)
    {
        long runs = shape.Aggregate(1L, (a, b) => a * b) / runLength;
        var p = HugePageMemory.Allocate((nuint)Math.Max(runs * count * DTypes.SizeOf(dtype), 1));
        Fill(p, runs, runLength, first, count, TensorSeed(name));
        if (!_parts.TryGetValue(name, out var list))
            _parts[name] = list = [];
        list.Add((nint)p);
        return new HostWeight(name, dtype, resultShape, (nint)p);
    }

    /// <summary>Frees a tensor nothing reads any more (its int8 copy replaced it); asking for it again is an error.</summary>
    public void Release(string name)
    {
        if (_data.Remove(name, out var p))
            HugePageMemory.Free((void*)p);
        if (_parts.Remove(name, out var parts))
            parts.ForEach(q => HugePageMemory.Free((void*)q));
    }

    private ulong TensorSeed(string name)
    {
        ulong h = 0xCBF29CE484222325UL; // FNV-1a over the name: stable across processes
        foreach (char c in name)
            h = (h ^ c) * 0x100000001B3UL;
        return Mix(seed ^ h);
    }

    // splitmix64's finaliser: a good 64-bit hash of a counter.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // p[d] for d < runs · count: the value of element (d / count) · runLength + first + d % count of the whole tensor.
    private void Fill(byte* p, long runs, long runLength, long first, long count, ulong tensorSeed)
    {
        const long chunk = 1 << 18;
        long total = runs * count, chunks = (total + chunk - 1) / chunk;
        var kind = dtype;
        Parallel.For(0L, chunks, c =>
        {
            long end = Math.Min(total, (c + 1) * chunk);
            long run = c * chunk / count, j = c * chunk % count;
            for (long i = c * chunk; i < end; i++)
            {
                long source = run * runLength + first + j;
                if (++j == count)
                    (run, j) = (run + 1, 0);
                ulong r = Mix(tensorSeed + (ulong)source * 0x9E3779B97F4A7C15UL);
                float v = ((r >> 40) / (float)(1 << 24) * 2f - 1f) * 1e-3f;
                switch (kind)
                {
                    case DType.F32: ((float*)p)[i] = v; break;
                    case DType.F16: ((Half*)p)[i] = (Half)v; break;
                    default: ((ushort*)p)[i] = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16); break;
                }
            }
        });
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _data.Values.Concat(_parts.Values.SelectMany(l => l)))
            HugePageMemory.Free((void*)p);
        _data.Clear();
        _parts.Clear();
    }
}
