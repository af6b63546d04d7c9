using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// A caching allocator for activations: sizes are rounded up to one of eight steps per power of two and
/// freed buffers are kept per size, last freed first out. Every kernel runs on one stream, so a buffer
/// returned here may be handed out again at once: later work is ordered after earlier work. The same
/// sequence of requests always gets the same buffers, which CUDA graph replays rely on.
/// </summary>
internal sealed class DevicePool : IDisposable
{
    private readonly Dictionary<long, Stack<DeviceMemory>> _free = new();
    private readonly List<DeviceMemory> _all = [];

    /// <summary>Bytes held from the driver (in use or cached).</summary>
    public long ReservedBytes { get; private set; }

    public static long RoundUp(long bytes)
    {
        if (bytes <= 4096)
            return 4096;
        int log = 63 - (int)long.LeadingZeroCount(bytes - 1);      // bytes in (2^log, 2^(log+1)]
        long step = 1L << (log - 3);                           // eight steps per octave
        return (bytes + step - 1) / step * step;
    }

    public DeviceMemory Rent(long bytes)
    {
        long size = RoundUp(bytes);
        if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            return stack.Pop();
        DeviceMemory mem;
        try
        {
            mem = new DeviceMemory(size);
        }
        catch (CudaException e) when (e.Code == 2) // CUDA_ERROR_OUT_OF_MEMORY
        {
            throw new CudaException(e.Call, e.Code,
                $"out of device memory allocating {size >> 20} MiB for activations ({ReservedBytes >> 20} MiB already held); " +
                "lower --gpu-memory-utilization, --max-num-batched-tokens or --max-num-seqs");
        }
        _all.Add(mem);
        ReservedBytes += size;
        return mem;
    }

    public void Return(DeviceMemory mem)
    {
        if (!_free.TryGetValue(mem.Bytes, out var stack))
            _free[mem.Bytes] = stack = new Stack<DeviceMemory>();
        stack.Push(mem);
    }

    public void Dispose()
    {
        foreach (var m in _all)
            m.Dispose();
        _all.Clear();
        _free.Clear();
    }
}
