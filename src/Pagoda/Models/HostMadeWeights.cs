using System.Runtime.InteropServices;
using Pagoda.Backends;

namespace Pagoda.Models;

/// <summary>
/// Weights a model computes on the host at load time (Gemma's 1 + w norm weights) and hands to the backend
/// as float32 <see cref="HostWeight"/>s. The CPU backend borrows the host memory rather than copying it, so
/// the buffers live until this is disposed, with the model.
/// </summary>
internal sealed unsafe class HostMadeWeights : IDisposable
{
    private readonly List<nint> _buffers = [];

    /// <summary>A stored weight's values widened to float32, as transformers' `.float()` gives them.</summary>
    public static float[] Widen(HostWeight w)
    {
        long count = w.Shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[checked((int)count)];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = w.DType switch
            {
                DType.F32 => ((float*)w.Data)[i],
                DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)w.Data)[i] << 16),
                DType.F16 => (float)((Half*)w.Data)[i],
                _ => throw new NotSupportedException($"'{w.Name}' is {w.DType}, not a float dtype"),
            };
        }
        return values;
    }

    /// <summary>Loads <paramref name="values"/> [shape] as a float32 weight named <paramref name="name"/>.</summary>
    public Tensor Load(IBackend backend, string name, float[] values, params int[] shape)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(values.Length * sizeof(float)), 64);
        _buffers.Add((nint)p);
        values.CopyTo(new Span<float>(p, values.Length));
        return backend.LoadWeight(new HostWeight(name, DType.F32, shape, (nint)p));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _buffers)
            NativeMemory.AlignedFree((void*)p);
        _buffers.Clear();
    }
}
