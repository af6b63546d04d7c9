using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Pagoda.Loading;

/// <summary>A pickled tuple (kept apart from lists so shapes and persistent ids are recognisable).</summary>
internal sealed record PickleTuple(object?[] Items);

/// <summary>An OrderedDict or dict, in insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];
}

/// <summary>A torch storage class such as torch.HalfStorage: its element type and size.</summary>
internal sealed record TorchStorageType(string Name, Backends.DType? DType, int ElementSize);

/// <summary>What torch._utils._rebuild_tensor_v2 was asked to build: a view into a storage.</summary>
internal sealed record TorchTensorRef(object Storage, long Offset, long[] Size, long[] Stride);

/// <summary>
/// A pickle reader that understands exactly what torch.save writes for a state dict and nothing else.
/// It never imports or calls anything: the few globals a state dict names are mapped to inert
/// descriptions, every other global, and every opcode that builds arbitrary objects, is refused.
/// </summary>
internal sealed class TorchUnpickler
{
    private enum Callable { OrderedDict, RebuildTensor, RebuildParameter }

    private static readonly Dictionary<string, (Backends.DType? DType, int Size)> StorageTypes = new()
    {
        ["FloatStorage"] = (Backends.DType.F32, 4),
        ["HalfStorage"] = (Backends.DType.F16, 2),
        ["BFloat16Storage"] = (Backends.DType.BF16, 2),
        ["DoubleStorage"] = (null, 8),
        ["LongStorage"] = (null, 8),
        ["IntStorage"] = (null, 4),
        ["ShortStorage"] = (null, 2),
        ["CharStorage"] = (null, 1),
        ["ByteStorage"] = (null, 1),
        ["BoolStorage"] = (null, 1),
        ["UntypedStorage"] = (null, 1),
    };

    private static readonly object Mark = new();
    private readonly Stream _in;
    private readonly string _path;
    private readonly Func<PickleTuple, object> _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly Dictionary<long, object?> _memo = new();

    private TorchUnpickler(Stream input, string path, Func<PickleTuple, object> persistentLoad)
    {
        _in = input;
        _path = path;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Reads one pickle from the stream's current position up to and including STOP.</summary>
    public static object? Load(Stream input, string path, Func<PickleTuple, object> persistentLoad) =>
        new TorchUnpickler(input, path, persistentLoad).Run();

    private ModelLoadException Refuse(string what) =>
        new(_path, $"{what}; a PyTorch state dict never needs this, so the checkpoint is refused (loading must not run code)");

    private ModelLoadException Broken(string what) => new(_path, $"malformed pickle: {what}");

    private object? Run()
    {
        while (true)
        {
            long at = _in.Position;
            int op = _in.ReadByte();
            switch (op)
            {
                case -1: throw Broken("ends before STOP");
                case 0x80: ReadByte(); break; // PROTO: versions 2-5 only differ in opcodes handled below
                case 0x95: ReadBytes(8); break; // FRAME: a length hint
                case (byte)'.': return Pop();
                case (byte)'(': _stack.Add(Mark); break;
                case (byte)')': Push(new PickleTuple([])); break;
                case (byte)'t': Push(new PickleTuple(PopMark().ToArray())); break;
                case 0x85: Push(new PickleTuple([Pop()])); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; }
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(PopMark()); break;
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }
                case (byte)'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; }
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)'d': { var d = new PickleDict(); AddPairs(d, PopMark()); Push(d); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Items.Add(new(k, v)); break; }
                case (byte)'u': { var items = PopMark(); AddPairs(AsDict(Peek()), items); break; }
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
                case (byte)'K': Push((long)ReadByte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
                case 0x8a: Push(ReadLong(ReadByte())); break;
                case 0x8b: Push(ReadLong(ReadLength(4))); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(ReadBytes(ReadLength(4)))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(ReadBytes(ReadByte()))); break;
                case 0x8d: Push(Encoding.UTF8.GetString(ReadBytes(ReadLength(8)))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break;
                case (byte)'T': Push(Encoding.Latin1.GetString(ReadBytes(ReadLength(4)))); break;
                case (byte)'q': _memo[ReadByte()] = Peek(); break;
                case (byte)'r': _memo[ReadLength(4)] = Peek(); break;
                case 0x94: _memo[_memo.Count] = Peek(); break;
                case (byte)'h': Push(Recall(ReadByte())); break;
                case (byte)'j': Push(Recall(ReadLength(4))); break;
                case (byte)'0': Pop(); break;
                case (byte)'2': Push(Peek()); break;
                case (byte)'c': Push(Global(ReadLine(), ReadLine())); break;
                case 0x93: { var name = Pop(); var module = Pop(); Push(Global(AsString(module), AsString(name))); break; }
                case (byte)'Q': Push(_persistentLoad(Pop() as PickleTuple ?? throw Broken("persistent id is not a tuple"))); break;
                case (byte)'R': { var args = Pop(); var fn = Pop(); Push(Reduce(fn, args)); break; }
                case (byte)'b': Build(Pop(), Peek()); break;
                default:
                    throw Refuse($"pickle opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {at}");
            }
        }
    }

    private object Global(string module, string name)
    {
        if (module == "collections" && name == "OrderedDict")
            return Callable.OrderedDict;
        if (module == "torch._utils" && name == "_rebuild_tensor_v2")
            return Callable.RebuildTensor;
        if (module == "torch._utils" && name == "_rebuild_parameter")
            return Callable.RebuildParameter;
        if (module == "torch" && StorageTypes.TryGetValue(name, out var st))
            return new TorchStorageType(name, st.DType, st.Size);
        throw Refuse($"it names the global '{module}.{name}'");
    }

    private object Reduce(object? fn, object? args)
    {
        var a = (args as PickleTuple)?.Items ?? throw Broken("REDUCE arguments are not a tuple");
        switch (fn)
        {
            case Callable.OrderedDict when a.Length == 0:
                return new PickleDict();
            case Callable.RebuildTensor when a.Length is 6 or 7:
                return new TorchTensorRef(a[0] ?? throw Broken("tensor without storage"), AsLong(a[1]),
                    AsLongs(a[2]), AsLongs(a[3]));
            case Callable.RebuildParameter when a.Length == 3 && a[0] is TorchTensorRef t:
                return t;
            case Callable c:
                throw Broken($"{c} called with {a.Length} unexpected arguments");
            default:
                throw Refuse($"it calls {Describe(fn)}");
        }
    }

    private void Build(object? state, object? target)
    {
        // A state dict carries its `_metadata` (per-module versions) as instance state; it is not needed.
        if (target is PickleDict)
            return;
        throw Refuse($"it sets the state of {Describe(target)}");
    }

    private static string Describe(object? v) => v switch
    {
        null => "None",
        TorchStorageType s => "torch." + s.Name,
        _ => v.GetType().Name,
    };

    private void AddPairs(PickleDict d, List<object?> items)
    {
        if (items.Count % 2 != 0)
            throw Broken("odd number of dict items");
        for (int i = 0; i < items.Count; i += 2)
            d.Items.Add(new(items[i], items[i + 1]));
    }

    private void Push(object? v) => _stack.Add(v);

    private object? Peek() => _stack.Count > 0 && _stack[^1] != Mark ? _stack[^1] : throw Broken("stack underflow");

    private object? Pop()
    {
        var v = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private List<object?> PopMark()
    {
        int m = _stack.LastIndexOf(Mark);
        if (m < 0)
            throw Broken("no MARK on the stack");
        var items = _stack.GetRange(m + 1, _stack.Count - m - 1);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private object? Recall(long key) => _memo.TryGetValue(key, out var v) ? v : throw Broken($"memo key {key} never stored");

    private List<object?> AsList(object? v) => v as List<object?> ?? throw Broken("APPEND to a non-list");

    private PickleDict AsDict(object? v) => v as PickleDict ?? throw Broken("SETITEM on a non-dict");

    private string AsString(object? v) => v as string ?? throw Broken("global name is not a string");

    private long AsLong(object? v) => v is long l ? l : throw Broken("expected an integer");

    private long[] AsLongs(object? v) => (v as PickleTuple)?.Items.Select(AsLong).ToArray() ?? throw Broken("expected a tuple of integers");

    private int ReadByte() => _in.ReadByte() is var b and >= 0 ? b : throw Broken("truncated");

    private byte[] ReadBytes(long n)
    {
        if (n < 0 || n > _in.Length - _in.Position)
            throw Broken($"a {n}-byte value runs past the end");
        var buf = new byte[n];
        _in.ReadExactly(buf);
        return buf;
    }

    private long ReadLength(int bytes)
    {
        var b = ReadBytes(bytes);
        return bytes == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadInt64LittleEndian(b);
    }

    private object ReadLong(long n)
    {
        var v = new BigInteger(ReadBytes(n), isUnsigned: false, isBigEndian: false);
        return v >= long.MinValue && v <= long.MaxValue ? (long)v : v;
    }

    private string ReadLine()
    {
        var sb = new StringBuilder();
        for (int b = ReadByte(); b != '\n'; b = ReadByte())
        {
            if (sb.Length > 256)
                throw Broken("global name too long");
            sb.Append((char)b);
        }
        return sb.ToString();
    }
}
