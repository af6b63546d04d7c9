using System.Runtime.InteropServices;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// Recycles activation buffers by size: a forward asks for the same shapes step after step, so after
/// the first step no op allocates (and large prefill buffers do not fault fresh pages every step).
/// Used by one engine thread at a time.
/// </summary>
internal sealed unsafe class BufferCache : IDisposable
{
    private const int MaxBuffers = 64;
    private readonly Dictionary<nuint, Stack<nint>> _free = new();
    private int _count;
    private bool _disposed;

    public byte* Rent(nuint bytes)
    {
        lock (_free)
        {
            if (_free.TryGetValue(bytes, out var stack) && stack.Count > 0)
            {
                _count--;
                return (byte*)stack.Pop();
            }
        }
        return null;
    }

    /// <summary>Keeps the buffer for reuse; false when full (the caller frees it).</summary>
    public bool Return(nuint bytes, byte* data)
    {
        lock (_free)
        {
            if (_disposed || _count >= MaxBuffers)
                return false;
            if (!_free.TryGetValue(bytes, out var stack))
                _free[bytes] = stack = new Stack<nint>();
            stack.Push((nint)data);
            _count++;
            return true;
        }
    }

    public void Dispose()
    {
        lock (_free)
        {
            foreach (var stack in _free.Values)
            {
                while (stack.Count > 0)
                    NativeMemory.AlignedFree((void*)stack.Pop());
            }
            _count = 0;
            _disposed = true;
        }
    }
}
