using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Pagoda.Backends;
using Pagoda.Loading;

namespace Pagoda.Tests.Support;

/// <summary>Writes safetensors files for tests: re-sharding, re-typing and deliberately broken headers.</summary>
public static class SafeTensorsWriter
{
    public sealed record Entry(string Name, string DType, int[] Shape, byte[] Data);

    /// <summary>Reads every tensor of a file into memory.</summary>
    public static List<Entry> ReadAll(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return f.Tensors.Values.OrderBy(t => t.Offset)
            .Select(t => new Entry(t.Name, t.DType.ToString(), t.Shape, f.GetBytes(t).ToArray()))
            .ToList();
    }

    public static void Write(string path, IEnumerable<Entry> entries) => WriteRaw(path, Header(entries, out var data), data);

    /// <summary>Writes the given header JSON verbatim followed by data (for malformed-file tests).</summary>
    public static void WriteRaw(string path, string headerJson, byte[] data, long? claimedHeaderLength = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        using var s = System.IO.File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, claimedHeaderLength ?? header.Length);
        s.Write(len);
        s.Write(header);
        s.Write(data);
    }

    public static string Header(IEnumerable<Entry> entries, out byte[] data)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        using var ms = new MemoryStream();
        foreach (var e in entries)
        {
            long begin = ms.Position;
            ms.Write(e.Data);
            header[e.Name] = new JsonObject
            {
                ["dtype"] = e.DType,
                ["shape"] = new JsonArray(e.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(begin, ms.Position),
            };
        }
        data = ms.ToArray();
        return header.ToJsonString();
    }

    /// <summary>Widens a BF16 or F16 entry to F32 (exactly representable, so results must not change).</summary>
    public static Entry ToF32(Entry e)
    {
        if (e.DType == nameof(DType.F32))
            return e;
        var dst = new byte[e.Data.Length * 2];
        for (int i = 0; i < e.Data.Length / 2; i++)
        {
            ushort bits = BinaryPrimitives.ReadUInt16LittleEndian(e.Data.AsSpan(i * 2));
            float v = e.DType == nameof(DType.BF16) ? BitConverter.Int32BitsToSingle(bits << 16) : (float)BitConverter.UInt16BitsToHalf(bits);
            BinaryPrimitives.WriteSingleLittleEndian(dst.AsSpan(i * 4), v);
        }
        return e with { DType = "F32", Data = dst };
    }
}
