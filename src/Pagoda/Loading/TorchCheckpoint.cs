using System.IO.Compression;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Pagoda.Loading;

/// <summary>
/// A PyTorch checkpoint (pytorch_model.bin) holding a state dict: the zip container torch.save writes
/// since 1.6, or the older single-stream format. The pickle is read by <see cref="TorchUnpickler"/>,
/// which refuses anything but tensors in (Ordered)dicts, so opening a checkpoint never runs code.
/// Tensors are copied into one native buffer as contiguous row-major arrays (views, offsets and strides
/// are resolved here); tensors of integer or bool storages are left out, as no model reads them.
/// </summary>
public sealed unsafe partial class TorchCheckpoint : ITensorFile
{
    private const int Alignment = 64;
    private byte* _buffer;

    private TorchCheckpoint(string path, Dictionary<string, TensorInfo> tensors, byte* buffer)
    {
        FilePath = path;
        Tensors = tensors;
        _buffer = buffer;
    }

    /// <inheritdoc />
    public string FilePath { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <inheritdoc />
    public byte* GetPointer(TensorInfo info) => _buffer + info.Offset;

    /// <summary>Reads <paramref name="path"/>; errors name the file and the problem.</summary>
    public static TorchCheckpoint Open(string path)
    {
        if (!File.Exists(path))
            throw new ModelLoadException(path, "file not found");
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Span<byte> magic = stackalloc byte[4];
            int n = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
            file.Position = 0;
            if (n == 4 && magic.SequenceEqual("PK\x03\x04"u8))
                return ReadZip(path, file);
            if (n >= 2 && magic[0] == 0x80)
                return ReadLegacy(path, file);
            throw new ModelLoadException(path, "not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy pickle stream)");
        }
        catch (InvalidDataException e)
        {
            throw new ModelLoadException(path, $"damaged zip archive ({e.Message})", e);
        }
        catch (EndOfStreamException e)
        {
            throw new ModelLoadException(path, "truncated checkpoint", e);
        }
    }

    /// <summary>A storage named by a persistent id, with the element offset of a legacy storage view.</summary>
    private sealed record StorageRef(string Key, TorchStorageType Type, long ElementOffset);

    private static (string Name, TorchTensorRef Ref)[] StateDict(string path, object? root)
    {
        if (root is not PickleDict dict)
            throw new ModelLoadException(path, "the pickle does not hold a state dict (an OrderedDict of tensors)");
        var result = new List<(string, TorchTensorRef)>();
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name)
                throw new ModelLoadException(path, "a state dict key is not a string");
            if (value is not TorchTensorRef t || t.Storage is not StorageRef)
                throw new ModelLoadException(path, $"state dict entry '{name}' is not a tensor");
            result.Add((name, t));
        }
        return result.ToArray();
    }

    private static TorchStorageType StorageTypeOf(string path, object? v) =>
        v as TorchStorageType ?? throw new ModelLoadException(path, "persistent id names no torch storage type");

    private static TorchCheckpoint ReadZip(string path, FileStream file)
    {
        using var zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
                                             && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new ModelLoadException(path, "zip archive without exactly one <name>/data.pkl; not a torch.save checkpoint");
        string prefix = pickles[0].FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "byteorder") is { } order)
        {
            using var r = new StreamReader(order.Open());
            if (r.ReadToEnd().Trim() != "little")
                throw new ModelLoadException(path, "big-endian checkpoints are not supported");
        }

        object? root;
        using (var pkl = new MemoryStream())
        {
            using (var s = pickles[0].Open())
                s.CopyTo(pkl);
            pkl.Position = 0;
            root = TorchUnpickler.Load(pkl, path, pid =>
            {
                var a = pid.Items;
                if (a.Length != 5 || a[0] as string != "storage" || a[2] is not string key)
                    throw new ModelLoadException(path, "unexpected persistent id (expected ('storage', type, key, location, numel))");
                return new StorageRef(key, StorageTypeOf(path, a[1]), 0);
            });
        }
        var entries = StateDict(path, root);
        var builder = new Builder(path, entries);
        try
        {
            foreach (string key in builder.StorageKeys)
            {
                var entry = zip.GetEntry($"{prefix}data/{key}")
                            ?? throw new ModelLoadException(path, $"storage '{key}' is missing from the archive");
                using var s = entry.Open();
                builder.Fill(key, s, entry.Length);
            }
            return builder.Finish();
        }
        catch
        {
            builder.Dispose();
            throw;
        }
    }

    private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");

    private static TorchCheckpoint ReadLegacy(string path, FileStream file)
    {
        var stream = new BufferedStream(file, 1 << 16);
        Func<PickleTuple, object> noPersistent = _ => throw new ModelLoadException(path, "unexpected persistent id in a header pickle");
        object? magic = TorchUnpickler.Load(stream, path, noPersistent);
        if (magic is not BigInteger m || m != LegacyMagic)
            throw new ModelLoadException(path, "not a PyTorch checkpoint (legacy magic number missing)");
        if (TorchUnpickler.Load(stream, path, noPersistent) is not long version || version != 1001)
            throw new ModelLoadException(path, "unsupported legacy checkpoint protocol version");
        if (TorchUnpickler.Load(stream, path, noPersistent) is PickleDict sysInfo
            && sysInfo.Items.Any(kv => kv.Key as string == "little_endian" && kv.Value is false))
            throw new ModelLoadException(path, "big-endian checkpoints are not supported");

        var root = TorchUnpickler.Load(stream, path, pid =>
        {
            var a = pid.Items;
            if (a.Length != 6 || a[0] as string != "storage" || a[2] is not string key)
                throw new ModelLoadException(path, "unexpected persistent id (expected ('storage', type, key, location, numel, view))");
            long offset = a[5] switch
            {
                null => 0,
                PickleTuple { Items: [string, long o, long] } => o,
                _ => throw new ModelLoadException(path, "unexpected storage view metadata"),
            };
            return new StorageRef(key, StorageTypeOf(path, a[1]), offset);
        });
        var entries = StateDict(path, root);
        if (TorchUnpickler.Load(stream, path, noPersistent) is not List<object?> keys || keys.Any(k => k is not string))
            throw new ModelLoadException(path, "legacy checkpoint without its list of storage keys");

        var builder = new Builder(path, entries);
        try
        {
            Span<byte> count = stackalloc byte[8];
            foreach (string key in keys.Cast<string>())
            {
                stream.ReadExactly(count);
                long numel = BitConverter.ToInt64(count);
                long bytes = checked(numel * builder.ElementSize(key));
                if (numel < 0 || bytes > file.Length - stream.Position)
                    throw new ModelLoadException(path, $"storage '{key}' claims {numel} elements, more than the file holds");
                builder.Fill(key, stream, bytes);
            }
            return builder.Finish();
        }
        catch
        {
            builder.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_buffer != null)
            NativeMemory.AlignedFree(_buffer);
        _buffer = null;
    }
}
