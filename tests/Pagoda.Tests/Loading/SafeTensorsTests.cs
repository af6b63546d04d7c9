using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>Malformed safetensors files fail with a message naming the file and the problem.</summary>
public class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pagoda-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Path(string name) => System.IO.Path.Combine(_dir, name);

    private ModelLoadException Fails(string file)
    {
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(file).Dispose());
        Assert.Contains(file, e.Message);
        return e;
    }

    [Fact]
    public void ReadsAValidFile()
    {
        string f = Path("ok.safetensors");
        SafeTensorsWriter.Write(f, [new("w", "F32", [2, 3], new byte[24]), new("b", "BF16", [3], new byte[6])]);
        using var st = SafeTensorsFile.Open(f);
        Assert.Equal([2, 3], st.Tensors["w"].Shape);
        Assert.Equal(Pagoda.Backends.DType.BF16, st.Tensors["b"].DType);
        Assert.Equal(6, st.GetBytes(st.Tensors["b"]).Length);
    }

    [Fact]
    public void TooShortFile()
    {
        string f = Path("short.safetensors");
        File.WriteAllBytes(f, [1, 2, 3]);
        Assert.Contains("truncated", Fails(f).Problem);
    }

    [Fact]
    public void HeaderLengthBeyondFile()
    {
        string f = Path("lying.safetensors");
        SafeTensorsWriter.WriteRaw(f, "{}", [], claimedHeaderLength: 1 << 20);
        Assert.Contains("header length", Fails(f).Problem);
    }

    [Fact]
    public void HeaderNotJson()
    {
        string f = Path("notjson.safetensors");
        SafeTensorsWriter.WriteRaw(f, "{\"w\": [", []);
        Assert.Contains("not valid JSON", Fails(f).Problem);
    }

    [Fact]
    public void DataOffsetsPastEnd()
    {
        string f = Path("trunc.safetensors");
        SafeTensorsWriter.WriteRaw(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]);
        var e = Fails(f);
        Assert.Contains("'w'", e.Problem);
        Assert.Contains("truncated", e.Problem);
    }

    [Fact]
    public void ShapeDisagreesWithByteCount()
    {
        string f = Path("size.safetensors");
        SafeTensorsWriter.WriteRaw(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", new byte[16]);
        Assert.Contains("needs 12", Fails(f).Problem);
    }

    [Fact]
    public void UnknownDType()
    {
        string f = Path("dtype.safetensors");
        SafeTensorsWriter.WriteRaw(f, "{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
        Assert.Contains("unsupported dtype 'I64'", Fails(f).Problem);
    }

    [Fact]
    public void MissingFields()
    {
        string f = Path("fields.safetensors");
        SafeTensorsWriter.WriteRaw(f, "{\"w\":{\"dtype\":\"F32\"}}", []);
        Assert.Contains("'w'", Fails(f).Problem);
    }
}
