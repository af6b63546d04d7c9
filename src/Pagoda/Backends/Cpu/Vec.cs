using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>Vector primitives shared by the CPU kernels (Vector512 where accelerated, else Vector256, else scalar).</summary>
internal static class Vec
{
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        int n = a.Length, i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i), acc);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), acc);
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(Unsafe.Add(ref pa, i), Unsafe.Add(ref pb, i), sum);
        return sum;
    }

    /// <summary>destination += scale * x.</summary>
    public static void AddScaled(ReadOnlySpan<float> x, float scale, Span<float> destination)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i <= x.Length - 8; i += 8)
            {
                var d = Vector256.Create(destination.Slice(i, 8));
                Vector256.FusedMultiplyAdd(Vector256.Create(x.Slice(i, 8)), s, d).CopyTo(destination.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++)
            destination[i] = MathF.FusedMultiplyAdd(x[i], scale, destination[i]);
    }

    /// <summary>Widens bfloat16 (raw ushort bits) to float32 by shifting into the high half.</summary>
    public static void WidenBf16(ReadOnlySpan<ushort> x, Span<float> destination)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref ushort px = ref MemoryMarshal.GetReference(x);
            ref float pd = ref MemoryMarshal.GetReference(destination);
            for (; i <= x.Length - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref px, (nuint)i));
                Vector512.ShiftLeft(lo, 16).AsSingle().StoreUnsafe(ref pd, (nuint)i);
                Vector512.ShiftLeft(hi, 16).AsSingle().StoreUnsafe(ref pd, (nuint)(i + 16));
            }
        }
        for (; i < x.Length; i++)
            destination[i] = BitConverter.Int32BitsToSingle(x[i] << 16);
    }

    /// <summary>Widens float16 to float32.</summary>
    public static void WidenF16(ReadOnlySpan<Half> x, Span<float> destination)
    {
        for (int i = 0; i < x.Length; i++)
            destination[i] = (float)x[i];
    }

    /// <summary>Reads row <paramref name="row"/> of a weight matrix as float32, widening when stored narrower.</summary>
    public static unsafe void ReadRow(CpuTensor w, int row, Span<float> destination)
    {
        int cols = w.Cols;
        switch (w.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>((float*)w.Pointer + (long)row * cols, cols).CopyTo(destination);
                break;
            case DType.BF16:
                WidenBf16(new ReadOnlySpan<ushort>((ushort*)w.Pointer + (long)row * cols, cols), destination);
                break;
            case DType.F16:
                WidenF16(new ReadOnlySpan<Half>((Half*)w.Pointer + (long)row * cols, cols), destination);
                break;
        }
    }

    public static float Max(ReadOnlySpan<float> x)
    {
        float m = float.NegativeInfinity;
        foreach (float v in x)
            m = MathF.Max(m, v);
        return m;
    }

    public static bool IsPow2(int n) => BitOperations.IsPow2(n);
}
