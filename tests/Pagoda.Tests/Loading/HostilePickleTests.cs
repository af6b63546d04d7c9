using System.IO.Compression;
using System.Text;
using Pagoda.Loading;

namespace Pagoda.Tests.Loading;

/// <summary>Checkpoints whose pickle would run code (or build anything but a state dict) are refused unexecuted.</summary>
public sealed class HostilePickleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pagoda-pickle-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Marker => Path.Combine(_dir, "pwned");

    private static byte[] Pickle(params object[] parts)
    {
        var ms = new MemoryStream();
        foreach (var p in parts)
            ms.Write(p is string s ? Encoding.Latin1.GetBytes(s) : (byte[])p);
        return ms.ToArray();
    }

    /// <summary>BINUNICODE: opcode 'X', 4-byte little-endian length, UTF-8 text.</summary>
    private static byte[] Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return [(byte)'X', .. BitConverter.GetBytes(b.Length), .. b];
    }

    private string Zip(byte[] dataPkl)
    {
        string path = Path.Combine(_dir, "pytorch_model.bin");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open())
            s.Write(dataPkl);
        using (var s = zip.CreateEntry("archive/byteorder").Open())
            s.Write("little"u8);
        return path;
    }

    private string Raw(byte[] pickle)
    {
        string path = Path.Combine(_dir, "pytorch_model.bin");
        File.WriteAllBytes(path, pickle);
        return path;
    }

    private void AssertRefused(string path, string expected)
    {
        var e = Assert.Throws<ModelLoadException>(() => TorchCheckpoint.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains("refused", e.Message);
        Assert.False(File.Exists(Marker), "the pickle ran code");
    }

    [Fact]
    public void OsSystemInALegacyStreamIsRefused() =>
        AssertRefused(Raw(Pickle("\u0080\u0002cos\nsystem\n", Str($"touch {Marker}"), "\u0085R.")), "'os.system'");

    [Fact]
    public void BuiltinsEvalInAZipIsRefused() =>
        AssertRefused(Zip(Pickle("\u0080\u0002cbuiltins\neval\n", Str($"open('{Marker}', 'w')"), "\u0085R.")), "'builtins.eval'");

    [Fact]
    public void StackGlobalNamingSubprocessIsRefused() =>
        AssertRefused(Zip(Pickle("\u0080\u0004\u008c\u000asubprocess\u008c\u0004call\u0093", Str("true"), "\u0085R.")), "'subprocess.call'");

    [Fact]
    public void UnknownGlobalInsideAStateDictIsRefused()
    {
        // A real-looking state dict whose one value is rebuilt by a function torch.save never writes.
        var pkl = Pickle("\u0080\u0002ccollections\nOrderedDict\n)R(", Str("w"), "ctorch._utils\n_rebuild_from_type_v2\n)Ru.");
        AssertRefused(Zip(pkl), "'torch._utils._rebuild_from_type_v2'");
    }

    [Fact]
    public void ProtocolZeroInstIsRefused() =>
        AssertRefused(Raw(Pickle("\u0080\u0002(", Str($"touch {Marker}"), "ios\nsystem\n.")), "opcode 0x69");

    [Fact]
    public void NewObjIsRefused() =>
        AssertRefused(Zip(Pickle("\u0080\u0002ccollections\nOrderedDict\n)\u0081.")), "opcode 0x81");

    [Fact]
    public void CallingAnAllowedStorageTypeIsRefused() =>
        AssertRefused(Zip(Pickle("\u0080\u0002ctorch\nFloatStorage\n)R.")), "calls torch.FloatStorage");

    [Fact]
    public void HostileBinInAModelFolderFailsTheLoadWithTheFileNamed()
    {
        string path = Raw(Pickle("\u0080\u0002cos\nsystem\n", Str($"touch {Marker}"), "\u0085R."));
        var e = Assert.Throws<ModelLoadException>(() => WeightStore.Open(_dir));
        Assert.Equal(path, e.Path);
        Assert.False(File.Exists(Marker));
    }

    [Fact]
    public void APickleThatIsNotAStateDictIsRejected()
    {
        var e = Assert.Throws<ModelLoadException>(() => TorchCheckpoint.Open(Zip(Pickle("\u0080\u0002", Str("hello"), "."))));
        Assert.Contains("does not hold a state dict", e.Message);
    }
}
