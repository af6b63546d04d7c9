using System.Runtime.InteropServices;

namespace Pagoda.Loading;

public sealed unsafe partial class TorchCheckpoint
{
    /// <summary>
    /// Lays every floating-point tensor out in one native buffer, then copies each storage's elements
    /// into the tensors that view it as soon as the storage is read (so only one storage is held at a time).
    /// </summary>
    private sealed class Builder : IDisposable
    {
        private readonly string _path;
        private readonly Dictionary<string, TensorInfo> _tensors = new();
        private readonly Dictionary<string, List<(TensorInfo Info, TorchTensorRef Ref, long Offset)>> _byStorage = new();
        private readonly Dictionary<string, int> _elementSizes = new();
        private readonly HashSet<string> _filled = [];
        private byte* _buffer;

        public Builder(string path, (string Name, TorchTensorRef Ref)[] entries)
        {
            _path = path;
            long total = 0;
            var placed = new List<(string Name, TorchTensorRef Ref, StorageRef Storage, long At)>();
            foreach (var (name, t) in entries)
            {
                var storage = (StorageRef)t.Storage;
                _elementSizes[storage.Key] = storage.Type.ElementSize;
                if (!_byStorage.ContainsKey(storage.Key))
                    _byStorage[storage.Key] = [];
                if (storage.Type.DType is null)
                    continue;
                if (t.Size.Length != t.Stride.Length || t.Size.Any(d => d < 0 || d > int.MaxValue) || t.Stride.Any(s => s < 0) || t.Offset < 0)
                    throw new ModelLoadException(path, $"tensor '{name}' has an invalid size, stride or offset");
                long bytes = checked(t.Size.Aggregate(1L, (a, b) => a * b) * storage.Type.ElementSize);
                placed.Add((name, t, storage, total));
                total = checked(total + (bytes + Alignment - 1) / Alignment * Alignment);
            }
            _buffer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(total, Alignment), Alignment);
            foreach (var (name, t, storage, at) in placed)
            {
                var shape = t.Size.Select(d => (int)d).ToArray();
                long bytes = t.Size.Aggregate(1L, (a, b) => a * b) * storage.Type.ElementSize;
                var info = new TensorInfo(name, storage.Type.DType!.Value, shape, at, bytes);
                _tensors[name] = info;
                _byStorage[storage.Key].Add((info, t, storage.ElementOffset + t.Offset));
            }
        }

        public IEnumerable<string> StorageKeys => _byStorage.Keys;

        public int ElementSize(string key) => _elementSizes.TryGetValue(key, out int size) ? size
            : throw new ModelLoadException(_path, $"storage '{key}' is not used by any tensor");

        /// <summary>Reads <paramref name="length"/> bytes of storage <paramref name="key"/> and fills its tensors.</summary>
        public void Fill(string key, Stream source, long length)
        {
            if (!_byStorage.TryGetValue(key, out var users))
                throw new ModelLoadException(_path, $"storage '{key}' is not used by any tensor");
            if (!_filled.Add(key))
                throw new ModelLoadException(_path, $"storage '{key}' appears twice");
            byte* data = (byte*)NativeMemory.Alloc((nuint)Math.Max(length, 1));
            try
            {
                for (long done = 0; done < length;)
                {
                    int chunk = (int)Math.Min(length - done, 1 << 30);
                    source.ReadExactly(new Span<byte>(data + done, chunk));
                    done += chunk;
                }
                int es = _elementSizes[key];
                long numel = length / es;
                foreach (var (info, t, offset) in users)
                    Copy(info, t, offset, data, numel, es);
            }
            finally
            {
                NativeMemory.Free(data);
            }
        }

        private void Copy(TensorInfo info, TorchTensorRef t, long offset, byte* src, long numel, int es)
        {
            int rank = t.Size.Length;
            if (info.Length == 0)
                return;
            long last = offset;
            for (int d = 0; d < rank; d++)
                last += (t.Size[d] - 1) * t.Stride[d];
            if (last >= numel)
                throw new ModelLoadException(_path,
                    $"tensor '{info.Name}' reaches element {last} of a storage holding {numel}; the checkpoint is truncated or damaged");

            byte* dst = _buffer + info.Offset;
            // Rows of the innermost dimension are contiguous when its stride is 1 (always, for plain tensors).
            long rowLength = rank == 0 ? 1 : t.Size[rank - 1];
            long innerStride = rank == 0 ? 1 : t.Stride[rank - 1];
            long rows = info.Length / es / rowLength;
            var index = new long[Math.Max(rank - 1, 0)];
            for (long r = 0; r < rows; r++)
            {
                long at = offset;
                for (int d = 0; d < index.Length; d++)
                    at += index[d] * t.Stride[d];
                if (innerStride == 1)
                {
                    Buffer.MemoryCopy(src + at * es, dst, rowLength * es, rowLength * es);
                }
                else
                {
                    for (long i = 0; i < rowLength; i++)
                        Buffer.MemoryCopy(src + (at + i * innerStride) * es, dst + i * es, es, es);
                }
                dst += rowLength * es;
                for (int d = index.Length - 1; d >= 0 && ++index[d] == t.Size[d]; d--)
                    index[d] = 0;
            }
        }

        public TorchCheckpoint Finish()
        {
            foreach (string key in _byStorage.Keys)
            {
                if (!_filled.Contains(key))
                    throw new ModelLoadException(_path, $"storage '{key}' is missing from the checkpoint");
            }
            var result = new TorchCheckpoint(_path, _tensors, _buffer);
            _buffer = null;
            return result;
        }

        public void Dispose()
        {
            if (_buffer != null)
                NativeMemory.AlignedFree(_buffer);
            _buffer = null;
        }
    }
}
