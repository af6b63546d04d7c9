using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Pagoda.KvEvents;

/// <summary>
/// The msgpack forms msgspec's encoder writes (msgspec/_core.c, mpack_encode_*): integers in their smallest
/// form (positive fixint, uint8/16/32/64; negatives likewise), floats always as float64, strings as fixstr /
/// str8 / str16 / str32 of UTF-8, arrays as fixarray / array16 / array32, nil. Big-endian throughout.
/// </summary>
public sealed class MsgpackWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new(256);

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    /// <summary>A copy of the bytes written so far.</summary>
    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>nil (0xc0).</summary>
    public void WriteNil() => WriteByte(0xc0);

    /// <summary>A non-negative integer in the smallest form that holds it.</summary>
    public void Write(ulong value)
    {
        if (value < 0x80)
            WriteByte((byte)value);
        else if (value <= byte.MaxValue)
            WriteHeader(0xcc, 1, value);
        else if (value <= ushort.MaxValue)
            WriteHeader(0xcd, 2, value);
        else if (value <= uint.MaxValue)
            WriteHeader(0xce, 4, value);
        else
            WriteHeader(0xcf, 8, value);
    }

    /// <summary>An integer in the smallest form: unsigned forms when non-negative (as msgspec), signed ones otherwise.</summary>
    public void Write(long value)
    {
        if (value >= 0)
        {
            Write((ulong)value);
            return;
        }
        if (value >= -32)
            WriteByte((byte)(sbyte)value);
        else if (value >= sbyte.MinValue)
            WriteHeader(0xd0, 1, (ulong)value);
        else if (value >= short.MinValue)
            WriteHeader(0xd1, 2, (ulong)value);
        else if (value >= int.MinValue)
            WriteHeader(0xd2, 4, (ulong)value);
        else
            WriteHeader(0xd3, 8, (ulong)value);
    }

    /// <summary>A float64 (0xcb and the IEEE 754 bits), as msgspec writes every Python float.</summary>
    public void Write(double value) => WriteHeader(0xcb, 8, BitConverter.DoubleToUInt64Bits(value));

    /// <summary>A UTF-8 string.</summary>
    public void Write(string value)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        if (length < 32)
            WriteByte((byte)(0xa0 | length));
        else if (length <= byte.MaxValue)
            WriteHeader(0xd9, 1, (ulong)length);
        else if (length <= ushort.MaxValue)
            WriteHeader(0xda, 2, (ulong)length);
        else
            WriteHeader(0xdb, 4, (ulong)length);
        var span = _buffer.GetSpan(length);
        Encoding.UTF8.GetBytes(value, span);
        _buffer.Advance(length);
    }

    /// <summary>A string, or nil for null.</summary>
    public void WriteOrNil(string? value)
    {
        if (value is null)
            WriteNil();
        else
            Write(value);
    }

    /// <summary>An integer, or nil for null.</summary>
    public void WriteOrNil(long? value)
    {
        if (value is { } v)
            Write(v);
        else
            WriteNil();
    }

    /// <summary>The header of an array of <paramref name="count"/> items.</summary>
    public void WriteArrayHeader(int count)
    {
        if (count < 16)
            WriteByte((byte)(0x90 | count));
        else if (count <= ushort.MaxValue)
            WriteHeader(0xdc, 2, (ulong)count);
        else
            WriteHeader(0xdd, 4, (ulong)count);
    }

    private void WriteByte(byte b)
    {
        _buffer.GetSpan(1)[0] = b;
        _buffer.Advance(1);
    }

    // A type byte and the low `size` bytes of `value`, big-endian.
    private void WriteHeader(byte type, int size, ulong value)
    {
        var span = _buffer.GetSpan(1 + size);
        span[0] = type;
        switch (size)
        {
            case 1: span[1] = (byte)value; break;
            case 2: BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)value); break;
            case 4: BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)value); break;
            default: BinaryPrimitives.WriteUInt64BigEndian(span[1..], value); break;
        }
        _buffer.Advance(1 + size);
    }
}
