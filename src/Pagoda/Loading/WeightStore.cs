using System.Text.Json;
using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>
/// All weights of a model folder: one model.safetensors, or the shards named by
/// model.safetensors.index.json; without safetensors, pytorch_model.bin (or the shards of
/// pytorch_model.bin.index.json) read by the restricted <see cref="TorchCheckpoint"/> loader.
/// Files stay open (safetensors memory-mapped) for the store's lifetime.
/// </summary>
public sealed class WeightStore : IDisposable
{
    private readonly List<ITensorFile> _files = [];
    private readonly Dictionary<string, (ITensorFile File, TensorInfo Info)> _tensors = new();
    private IMadeWeights? _made;   // dummy (or test-recorded) weights, made on request
    private Mxfp4Weights? _mxfp4;  // gpt-oss's packed experts, decoded on first use
    private readonly List<nint> _copies = [];   // column shards of row-parallel weights, freed with the store

    private WeightStore(string folder) => Folder = folder;

    /// <summary>The model folder.</summary>
    public string Folder { get; }

    /// <summary>The open tensor files (for dummy weights: the one generator, holding every tensor made so far).</summary>
    public IReadOnlyList<ITensorFile> Files => _files;

    /// <summary>Names of every tensor across all files.</summary>
    public IEnumerable<string> Names => _tensors.Keys;

    /// <summary>Opens the weights of <paramref name="folder"/>, single-file or sharded.</summary>
    public static WeightStore Open(string folder)
    {
        var store = new WeightStore(folder);
        try
        {
            string index = Path.Combine(folder, "model.safetensors.index.json");
            string single = Path.Combine(folder, "model.safetensors");
            string binIndex = Path.Combine(folder, "pytorch_model.bin.index.json");
            string bin = Path.Combine(folder, "pytorch_model.bin");
            if (File.Exists(index))
                store.OpenSharded(index, SafeTensorsFile.Open);
            else if (File.Exists(single))
                store.Add(SafeTensorsFile.Open(single));
            else if (File.Exists(binIndex))
                store.OpenSharded(binIndex, TorchCheckpoint.Open);
            else if (File.Exists(bin))
                store.Add(TorchCheckpoint.Open(bin));
            else
                throw new ModelLoadException(folder,
                    "no weights: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json");
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>A store that makes random weights of the requested shapes (`--load-format dummy`).</summary>
    public static WeightStore CreateDummy(string folder, Backends.DType dtype) => CreateMade(folder, new DummyWeights(folder, dtype));

    /// <summary>A store whose tensors <paramref name="made"/> makes on request, of the shapes the model asks for.</summary>
    internal static WeightStore CreateMade(string folder, IMadeWeights made)
    {
        var store = new WeightStore(folder) { _made = made };
        store._files.Add(made);
        return store;
    }

    /// <summary>Opens real weights for <paramref name="loadFormat"/> auto, safetensors or pt.</summary>
    public static WeightStore Open(string folder, string loadFormat)
    {
        string[] safetensors = ["model.safetensors.index.json", "model.safetensors"];
        string[] pt = ["pytorch_model.bin.index.json", "pytorch_model.bin"];
        string[]? required = loadFormat switch
        {
            "auto" => null,
            "safetensors" => safetensors,
            "pt" => pt,
            _ => throw new ArgumentException($"--load-format '{loadFormat}' is not supported (supported: auto, safetensors, pt, dummy)."),
        };
        if (required != null && !required.Any(f => File.Exists(Path.Combine(folder, f))))
            throw new ModelLoadException(folder, $"--load-format {loadFormat} needs {string.Join(" or ", required)}");
        return Open(folder);
    }

    private void OpenSharded(string indexPath, Func<string, ITensorFile> open)
    {
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException(indexPath, "missing 'weight_map' object");
            weightMap = map.EnumerateObject().ToDictionary(p => p.Name,
                p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()!
                    : throw new ModelLoadException(indexPath, $"weight_map entry '{p.Name}' is not a file name"));
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(indexPath, $"not valid JSON ({e.Message})");
        }

        foreach (string shard in weightMap.Values.Distinct())
        {
            if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                throw new ModelLoadException(indexPath, $"shard name '{shard}' must be a plain file name");
            Add(open(Path.Combine(Folder, shard)));
        }
        foreach (var (name, shard) in weightMap)
        {
            if (!_tensors.TryGetValue(name, out var found) || Path.GetFileName(found.File.FilePath) != shard)
                throw new ModelLoadException(Path.Combine(Folder, shard), $"tensor '{name}' listed in the index is not in this shard");
        }
    }

    private void Add(ITensorFile file)
    {
        _files.Add(file);
        foreach (var (name, info) in file.Tensors)
        {
            if (!_tensors.TryAdd(name, (file, info)))
                throw new ModelLoadException(file.FilePath, $"tensor '{name}' also appears in {_tensors[name].File.FilePath}");
        }
    }

    /// <summary>
    /// Adds the bfloat16 tensors decoded from every MXFP4 pair of the store (<see cref="Mxfp4Weights"/>): gpt-oss's
    /// NAME_blocks and NAME_scales become NAME, as an unquantized checkpoint names it. Decoded on first use.
    /// </summary>
    public void DecodeMxfp4()
    {
        var decoded = new Mxfp4Weights(Folder, _tensors.Values.ToList());
        if (decoded.Tensors.Count == 0)
            throw new ModelLoadException(Folder, "config.json declares MXFP4 quantization but no tensor has _blocks and _scales");
        Add(decoded);
        _mxfp4 = decoded;
    }

    /// <summary>Frees the decoded MXFP4 tensors once the model no longer reads them; null when there were none.</summary>
    public long? ReleaseDecodedMxfp4()
    {
        if (_mxfp4 is not { } m)
            return null;
        long bytes = m.DecodedBytes;
        m.Release();
        return bytes;
    }

    // For tests and tools that inspect a store without a config to imply shapes.
    internal (ITensorFile File, TensorInfo Info) Find(string name) => _tensors[name];

    /// <summary>
    /// Tells the store a tensor will not be read again (quantization copied it). Dummy weights are freed;
    /// memory-mapped files keep their pages, which the OS may drop since they are file-backed.
    /// </summary>
    public void Release(string name) => _made?.Release(name);

    /// <summary>Whether a tensor of that name exists.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>
    /// Looks a tensor up and checks its shape; a missing tensor or a wrong shape is a
    /// <see cref="ModelLoadException"/> naming the file.
    /// </summary>
    public (ITensorFile File, TensorInfo Info) Get(string name, params int[] expectedShape)
    {
        if (_made != null)
            return (_made, _made.GetOrCreate(name, expectedShape));
        if (!_tensors.TryGetValue(name, out var entry))
            throw new ModelLoadException(_files.Count == 1 ? _files[0].FilePath : Folder, $"missing tensor '{name}'");
        if (!entry.Info.Shape.SequenceEqual(expectedShape))
            throw new ModelLoadException(entry.File.FilePath,
                $"tensor '{name}' has shape [{string.Join(", ", entry.Info.Shape)}], config.json implies [{string.Join(", ", expectedShape)}]");
        return entry;
    }

    /// <summary>A tensor's bytes for a backend to load, after <see cref="Get"/>'s checks.</summary>
    public unsafe HostWeight View(string name, params int[] expectedShape)
    {
        var (file, info) = Get(name, expectedShape);
        return new HostWeight(name, info.DType, expectedShape, (nint)file.GetPointer(info));
    }

    /// <summary>
    /// Rows [firstRow, firstRow + rowCount) of a [rows, cols] tensor, after <see cref="Get"/>'s checks on the
    /// whole shape: q, k and v out of a fused qkv_proj, without a copy.
    /// </summary>
    public unsafe HostWeight ViewRows(string name, int[] expectedShape, int firstRow, int rowCount)
    {
        if (expectedShape.Length != 2 || firstRow < 0 || rowCount < 1 || firstRow + rowCount > expectedShape[0])
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"rows [{firstRow}, {firstRow + rowCount}) of '{name}' [{string.Join(", ", expectedShape)}]");
        long cols = expectedShape[1];
        if (_made != null)   // made weights make the rows alone (a shard never makes its whole tensor)
            return _made.MakeRuns(name, expectedShape, expectedShape[0] * cols, firstRow * cols, rowCount * cols, [rowCount, expectedShape[1]]);
        var (file, info) = Get(name, expectedShape);
        long offset = (long)firstRow * expectedShape[1] * DTypes.SizeOf(info.DType);
        return new HostWeight(name, info.DType, [rowCount, expectedShape[1]], (nint)((byte*)file.GetPointer(info) + offset));
    }

    /// <summary>Items [first, first + count) of a 1-D tensor (a column-parallel layer's bias shard), without a copy.</summary>
    public unsafe HostWeight ViewRange(string name, int length, int first, int count)
    {
        if (first < 0 || count < 1 || first + count > length)
            throw new ArgumentOutOfRangeException(nameof(first), $"items [{first}, {first + count}) of '{name}' [{length}]");
        if (_made != null)
            return _made.MakeRuns(name, [length], length, first, count, [count]);
        var (file, info) = Get(name, length);
        return new HostWeight(name, info.DType, [count], (nint)((byte*)file.GetPointer(info) + (long)first * DTypes.SizeOf(info.DType)));
    }

    /// <summary>
    /// Columns [firstCol, firstCol + colCount) of a [rows, cols] tensor, copied into memory the store owns until it is
    /// disposed: a row-parallel layer's shard (o_proj, down_proj), whose columns are not contiguous in the file.
    /// </summary>
    public HostWeight CopyColumns(string name, int[] expectedShape, int firstCol, int colCount) =>
        expectedShape.Length != 2 ? throw new ArgumentException($"'{name}': columns of a 2-D tensor", nameof(expectedShape))
        : CopyRuns(name, expectedShape, expectedShape[1], firstCol, colCount, [expectedShape[0], colCount]);

    /// <summary>
    /// The tensor read as runs of <paramref name="runLength"/> elements, items [first, first + count) of every run,
    /// copied (into memory the store owns) and shaped <paramref name="resultShape"/>: a shard of a stacked tensor, such
    /// as gpt-oss's [E, hidden, 2·intermediate] experts cut along their last dimension, or [E, intermediate, hidden]
    /// along their middle one (runs of intermediate · hidden).
    /// </summary>
    public unsafe HostWeight CopyRuns(string name, int[] expectedShape, int runLength, int first, int count, int[] resultShape)
    {
        long total = expectedShape.Aggregate(1L, (a, d) => a * d);
        if (runLength < 1 || total % runLength != 0 || first < 0 || count < 1 || first + count > runLength
            || resultShape.Aggregate(1L, (a, d) => a * d) != total / runLength * count)
            throw new ArgumentOutOfRangeException(nameof(first), $"items [{first}, {first + count}) of runs of {runLength} in '{name}' [{string.Join(", ", expectedShape)}]");
        if (_made != null)
            return _made.MakeRuns(name, expectedShape, runLength, first, count, resultShape);
        var (file, info) = Get(name, expectedShape);
        int size = DTypes.SizeOf(info.DType);
        long runs = total / runLength, runBytes = (long)runLength * size, shardBytes = (long)count * size;
        var src = (byte*)file.GetPointer(info);
        var dst = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)Math.Max(runs * shardBytes, 64), 64);
        lock (_copies)
            _copies.Add((nint)dst);
        for (long r = 0; r < runs; r++)
            Buffer.MemoryCopy(src + r * runBytes + (long)first * size, dst + r * shardBytes, shardBytes, shardBytes);
        return new HostWeight(name, info.DType, resultShape, (nint)dst);
    }

    /// <inheritdoc />
    public unsafe void Dispose()
    {
        lock (_copies)
        {
            foreach (var p in _copies)
                System.Runtime.InteropServices.NativeMemory.AlignedFree((void*)p);
            _copies.Clear();
        }
        foreach (var f in _files)
            f.Dispose();
        _files.Clear();
    }
}
