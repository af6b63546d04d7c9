namespace Pagoda.Backends;

/// <summary>Element types of stored weights and of compute.</summary>
public enum DType
{
    /// <summary>32-bit IEEE float.</summary>
    F32,
    /// <summary>16-bit IEEE half.</summary>
    F16,
    /// <summary>bfloat16: the top 16 bits of a float32.</summary>
    BF16,
    /// <summary>
    /// Signed 8-bit integers with one float32 scale per row (weight-only quantization made at load time:
    /// value = q * scale[row]). Never stored in model files.
    /// </summary>
    I8,
    /// <summary>Unsigned bytes: packed data a loader decodes (MXFP4 blocks and scales); never a backend's weight.</summary>
    U8,
}

/// <summary>Names and sizes of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType t) => t switch { DType.F32 => 4, DType.I8 or DType.U8 => 1, _ => 2 };

    /// <summary>Parses a safetensors dtype name (F32, F16, BF16; U8 for packed quantized data).</summary>
    public static bool TryParseSafeTensors(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "U8": dtype = DType.U8; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>Parses a config.json dtype name (float32, float16, bfloat16, with or without "torch.").</summary>
    public static DType? ParseTorch(string? name) => name?.Replace("torch.", "") switch
    {
        "float32" or "float" => DType.F32,
        "float16" or "half" => DType.F16,
        "bfloat16" => DType.BF16,
        _ => null,
    };
}
