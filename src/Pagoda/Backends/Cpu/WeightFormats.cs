using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// How a kernel reads 8 (or 1) weights of a row as float32. Kernels are generic over these structs so
/// the JIT emits one specialised loop per stored dtype with the widening inlined.
/// </summary>
internal unsafe interface IWeightFormat
{
    /// <summary>Bytes per element.</summary>
    static abstract int ElementSize { get; }

    /// <summary>Elements k .. k+7 of the row at <paramref name="row"/>, widened.</summary>
    static abstract Vector256<float> Load8(byte* row, int k);

    /// <summary>Elements k .. k+15, widened (the AVX-512 path).</summary>
    static abstract Vector512<float> Load16(byte* row, int k);

    /// <summary>Element k of the row, widened.</summary>
    static abstract float Load1(byte* row, int k);
}

internal unsafe struct F32Weights : IWeightFormat
{
    public static int ElementSize => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int k) => Vector256.Load((float*)row + k);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int k) => Vector512.Load((float*)row + k);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, int k) => ((float*)row)[k];
}

internal unsafe struct Bf16Weights : IWeightFormat
{
    public static int ElementSize => 2;

    // bf16 is the high half of a float32: zero-extend and shift, exact.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int k) => Vector256.ShiftLeft(WidenU16((ushort*)row + k), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int k) => Vector512.ShiftLeft(WidenU16x16((ushort*)row + k), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> WidenU16x16(ushort* p) => Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> WidenU16(ushort* p) => Avx2.IsSupported
        ? Avx2.ConvertToVector256Int32(p).AsUInt32()
        : Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, int k) => BitConverter.Int32BitsToSingle(((ushort*)row)[k] << 16);
}

internal unsafe struct F16Weights : IWeightFormat
{
    public static int ElementSize => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int k) => Widen(Bf16Weights.WidenU16((ushort*)row + k));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int k)
    {
        var h = Bf16Weights.WidenU16x16((ushort*)row + k);
        var magnitude = Vector512.ShiftLeft(h & Vector512.Create(0x7FFFu), 13);
        var value = magnitude.AsSingle() * Vector512.Create(0x77800000u).AsSingle();
        var special = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u << 13));
        value = Vector512.ConditionalSelect(special.AsSingle(), (magnitude | Vector512.Create(0x7F800000u)).AsSingle(), value);
        return (value.AsUInt32() | Vector512.ShiftLeft(h & Vector512.Create(0x8000u), 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, int k) => (float)((Half*)row)[k];

    // Exact half → float: move exponent and mantissa into place and rescale by 2^112, which also
    // normalises subnormals; infinities and NaNs get the all-ones exponent back.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Widen(Vector256<uint> h)
    {
        var magnitude = Vector256.ShiftLeft(h & Vector256.Create(0x7FFFu), 13);
        var value = magnitude.AsSingle() * Vector256.Create(0x77800000u).AsSingle();
        var special = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7C00u << 13));
        value = Vector256.ConditionalSelect(special.AsSingle(), (magnitude | Vector256.Create(0x7F800000u)).AsSingle(), value);
        return (value.AsUInt32() | Vector256.ShiftLeft(h & Vector256.Create(0x8000u), 16)).AsSingle();
    }
}

/// <summary>int8 weights; the per-row scale is applied by the kernel after the dot product.</summary>
internal unsafe struct I8Weights : IWeightFormat
{
    public static int ElementSize => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int k) => Vector256.ConvertToSingle(Avx2.IsSupported
        ? Avx2.ConvertToVector256Int32((sbyte*)row + k)
        : Vector256.WidenLower(Vector256.WidenLower(Vector128.CreateScalarUnsafe(*(long*)(row + k)).AsSByte().ToVector256Unsafe())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int k) => Vector512.ConvertToSingle(
        Vector512.WidenLower(Vector256.WidenLower(Vector128.Load((sbyte*)row + k).ToVector256Unsafe()).ToVector512Unsafe()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, int k) => ((sbyte*)row)[k];
}
