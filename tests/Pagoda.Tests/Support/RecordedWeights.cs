using System.Runtime.InteropServices;
using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Tests.Support;

/// <summary>
/// A model's weights as names and shapes only: what a real-size model asks its <see cref="WeightStore"/> for, recorded
/// without making the tensors. Tensors of at most <see cref="HostBackedElements"/> elements (norms, biases, sinks: what
/// a model reads on the host while it loads) get zeroed memory; larger ones get none (a null pointer), which only a
/// <see cref="ShapeOnlyBackend"/> may be handed, since it never reads a weight's bytes.
/// </summary>
internal sealed unsafe class RecordedWeights(DType dtype) : IMadeWeights
{
    public const long HostBackedElements = 1 << 16;

    private readonly Dictionary<string, TensorInfo> _tensors = new();
    private readonly Dictionary<string, nint> _memory = new();
    private readonly List<nint> _parts = [];

    /// <summary>A store over a new recorder; the recorder is the store's one file.</summary>
    public static (WeightStore Store, RecordedWeights Recorded) CreateStore(DType dtype)
    {
        var recorded = new RecordedWeights(dtype);
        return (WeightStore.CreateMade("/nowhere", recorded), recorded);
    }

    public string FilePath => "(recorded weights)";

    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>Every tensor asked for, by name, with the shape it was asked for.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes => _tensors.ToDictionary(t => t.Key, t => t.Value.Shape);

    /// <summary>Elements of every tensor asked for.</summary>
    public long TotalElements => _tensors.Values.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    public TensorInfo GetOrCreate(string name, int[] shape)
    {
        if (_tensors.TryGetValue(name, out var existing))
        {
            return existing.Shape.SequenceEqual(shape) ? existing : throw new InvalidOperationException(
                $"'{name}' asked for as [{string.Join(", ", existing.Shape)}] and as [{string.Join(", ", shape)}]");
        }
        long count = shape.Aggregate(1L, (a, b) => a * b);
        long bytes = count * DTypes.SizeOf(dtype);
        var info = new TensorInfo(name, dtype, shape, 0, bytes);
        _tensors[name] = info;
        if (count <= HostBackedElements)
            _memory[name] = (nint)NativeMemory.AllocZeroed((nuint)Math.Max(bytes, 1));
        return info;
    }

    // A part is recorded as its whole tensor (what the model asked for), with memory as a tensor of its size would get.
    public HostWeight MakeRuns(string name, int[] shape, long runLength, long first, long count, int[] resultShape)
    {
        GetOrCreate(name, shape);
        long n = resultShape.Aggregate(1L, (a, b) => a * b);
        nint p = 0;
        if (n <= HostBackedElements)
            _parts.Add(p = (nint)NativeMemory.AllocZeroed((nuint)Math.Max(n * DTypes.SizeOf(dtype), 1)));
        return new HostWeight(name, dtype, resultShape, p);
    }

    public byte* GetPointer(TensorInfo info) => _memory.TryGetValue(info.Name, out var p) ? (byte*)p : null;

    public void Release(string name)
    {
    }

    public void Dispose()
    {
        foreach (var p in _memory.Values.Concat(_parts))
            NativeMemory.Free((void*)p);
        _memory.Clear();
        _parts.Clear();
    }
}

/// <summary>
/// A backend that only takes weights in: <see cref="IBackend.LoadWeight"/> keeps the name, dtype and shape and never
/// reads the bytes, and MoE experts are "prepared" as descriptors, so a model of any size can be constructed over
/// <see cref="RecordedWeights"/>. Every kernel throws: nothing can run on it.
/// </summary>
internal sealed class ShapeOnlyBackend : IBackend, IMoeOps
{
    private sealed class ShapeTensor(DType dtype, int[] shape) : Tensor(dtype, shape);

    private sealed class ShapeExperts(MoeExpertWeights w) : MoeExperts(w.NumExperts, w.HiddenSize, w.IntermediateSize);

    /// <summary>Each weight loaded, in order.</summary>
    public List<(string Name, DType DType, int[] Shape)> Loaded { get; } = [];

    /// <summary>Each layer's experts as the model handed them over.</summary>
    public List<MoeExpertWeights> Experts { get; } = [];

    public string Name => "shape-only";

    public Tensor LoadWeight(HostWeight weight)
    {
        Loaded.Add((weight.Name, weight.DType, weight.Shape));
        return new ShapeTensor(weight.DType, weight.Shape);
    }

    public Tensor Empty(params int[] shape) => new ShapeTensor(DType.F32, shape);

    public MoeExperts PrepareExperts(MoeExpertWeights stored)
    {
        Experts.Add(stored);
        return new ShapeExperts(stored);
    }

    private static NotSupportedException NoKernels() => new("the shape-only backend loads weights and runs nothing");

    public PagedKvCache AllocateKvCache(int numLayers, int numBlocks, int blockSize, int kvWidth) => throw NoKernels();
    public void Embedding(Tensor table, ReadOnlySpan<int> ids, Tensor dst) => throw NoKernels();
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor dst) => throw NoKernels();
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor dst) => throw NoKernels();
    public void LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor dst) => throw NoKernels();
    public void Add(Tensor a, Tensor b, Tensor dst) => throw NoKernels();
    public void SiluMul(Tensor gate, Tensor up, Tensor dst) => throw NoKernels();
    public void GeluTanhMul(Tensor gate, Tensor up, Tensor dst) => throw NoKernels();
    public void Scale(Tensor x, float factor) => throw NoKernels();
    public void SoftCap(Tensor x, float cap) => throw NoKernels();
    public void Relu(Tensor x) => throw NoKernels();
    public void Rope(Tensor x, int headDim, ReadOnlySpan<int> positions, RotaryParams rope) => throw NoKernels();
    public void StoreKv(Tensor k, Tensor v, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping) => throw NoKernels();
    public void PagedAttention(Tensor q, PagedKvCache cache, int layer, ForwardBatch batch, AttentionSpec spec, Tensor dst) => throw NoKernels();
    public void GatherRows(Tensor x, ReadOnlySpan<int> rows, Tensor dst) => throw NoKernels();
    public void CopyToHost(Tensor src, Span<float> dst) => throw NoKernels();
    public void FusedMoe(Tensor x, Tensor routerLogits, MoeExperts experts, MoeSpec spec, Tensor dst) => throw NoKernels();

    public void Dispose()
    {
    }
}
