using System.IO.MemoryMappedFiles;
using System.Text.Json;
using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record TensorInfo(string Name, DType DType, int[] Shape, long Offset, long Length)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long NumElements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header, then raw
/// tensor bytes. Every header entry is validated against the file before any tensor is used.
/// </summary>
public sealed unsafe class SafeTensorsFile : ITensorFile
{
    private const long MaxHeaderBytes = 100L << 20;
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, MemoryMappedFile file, MemoryMappedViewAccessor view, long dataStart,
        Dictionary<string, TensorInfo> tensors)
    {
        FilePath = path;
        _file = file;
        _view = view;
        _dataStart = dataStart;
        Tensors = tensors;
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
    }

    /// <summary>The file this was opened from.</summary>
    public string FilePath { get; }

    /// <summary>Every tensor in the file by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>Opens and validates <paramref name="path"/>; errors name the file and the problem.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new ModelLoadException(path, "file not found");
        // Hub cache snapshots are symlinks into blobs/: measure the target, not the link.
        var info = new FileInfo(path);
        long fileLength = (info.LinkTarget != null ? info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo : null)?.Length ?? info.Length;
        if (fileLength < 8)
            throw new ModelLoadException(path, $"truncated safetensors file ({fileLength} bytes, the header length alone takes 8)");

        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            long headerLength = view.ReadInt64(0);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
                throw new ModelLoadException(path,
                    $"header length {headerLength} does not fit the file ({fileLength} bytes); the file is truncated or not safetensors");
            var headerBytes = new byte[headerLength];
            view.ReadArray(8, headerBytes, 0, headerBytes.Length);
            long dataStart = 8 + headerLength;
            var tensors = ParseHeader(path, headerBytes, fileLength - dataStart);
            return new SafeTensorsFile(path, file, view, dataStart, tensors);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The raw bytes of one tensor, straight from the mapping (valid while this file is open).</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo info) => new(_base + _dataStart + info.Offset, checked((int)info.Length));

    /// <summary>A pointer to one tensor's bytes in the mapping (valid while this file is open).</summary>
    public byte* GetPointer(TensorInfo info) => _base + _dataStart + info.Offset;

    private static Dictionary<string, TensorInfo> ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, $"header is not valid JSON ({e.Message})");
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException(path, "header is not a JSON object");

        var tensors = new Dictionary<string, TensorInfo>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
                continue;
            tensors[entry.Name] = ParseEntry(path, entry.Name, entry.Value, dataLength);
        }
        return tensors;
    }

    private static TensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        string Bad(string what) => throw new ModelLoadException(path, $"tensor '{name}': {what}");
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array
            || offEl.GetArrayLength() != 2)
            Bad("entry needs 'dtype', 'shape' and two 'data_offsets'");

        string dtypeName = dtypeEl.GetString()!;
        if (!DTypes.TryParseSafeTensors(dtypeName, out var dtype))
            Bad($"unsupported dtype '{dtypeName}' (supported: F32, F16, BF16, and U8 for packed quantized data)");

        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                Bad("shape must hold non-negative integers");
            shape[i++] = d.GetInt32();
        }

        if (!offEl[0].TryGetInt64(out long begin) || !offEl[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            Bad("data_offsets must be two non-decreasing non-negative integers");
        if (end > dataLength)
            Bad($"data_offsets end {end} lies past the end of the data ({dataLength} bytes); the file is truncated");
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        long expected = elements * DTypes.SizeOf(dtype);
        if (end - begin != expected)
            Bad($"{end - begin} bytes stored but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expected}");
        return new TensorInfo(name, dtype, shape, begin, end - begin);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
