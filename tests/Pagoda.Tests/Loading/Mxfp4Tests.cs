using System.Text.Json.Nodes;
using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Loading;

/// <summary>
/// gpt-oss's MXFP4 experts: bytes decoded by the format's rules (two e2m1 values a byte, the low nibble first; a
/// power of two 2^(s - 127) per 32 values; the last two dimensions swapped), and a quantized copy of tiny-gpt-oss
/// that must run exactly as an unquantized checkpoint holding the same values.
/// </summary>
public sealed class Mxfp4Tests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pagoda-mxfp4-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly float[] E2M1 = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];

    [Fact]
    public void BytesDecodeByTheFormatsRules()
    {
        var blocks = new byte[2 * 16];
        blocks[0] = 0x21;       // row 0: 0.5 then 1.0, times 2^(128 - 127)
        blocks[16] = 0xF8;      // row 1: -0 then -6, times 2^(126 - 127)
        blocks[16 + 15] = 0x7E; // row 1, values 30 and 31: -4 then 6
        byte[] scales = [128, 126];
        string file = Path.Combine(_dir, "model.safetensors");
        SafeTensorsWriter.Write(file, [new("w_blocks", "U8", [1, 2, 1, 16], blocks), new("w_scales", "U8", [1, 2, 1], scales)]);
        using var store = WeightStore.Open(_dir);
        store.DecodeMxfp4();
        var (f, info) = store.Get("w", 1, 32, 2);   // [experts, values, rows]: the last two swapped
        Assert.Equal(DType.BF16, info.DType);
        var v = Bf16s(f, info);
        Assert.Equal([1f, 2f], new[] { v[0 * 2 + 0], v[1 * 2 + 0] });
        Assert.True(float.IsNegative(v[0 * 2 + 1]) && v[0 * 2 + 1] == 0f);
        Assert.Equal([-3f, -2f, 3f], new[] { v[1 * 2 + 1], v[30 * 2 + 1], v[31 * 2 + 1] });
        Assert.Equal(0f, v[5 * 2 + 0]);

        // Once the model is built the decoded copies go; asking again is an error, not a read of freed memory.
        Assert.Equal(32 * 2 * 2L, store.ReleaseDecodedMxfp4());
        Assert.Throws<InvalidOperationException>(() => Bf16s(f, info));
    }

    [Fact]
    public void APairThatIsNotMxfp4IsALoadError()
    {
        SafeTensorsWriter.Write(Path.Combine(_dir, "model.safetensors"),
            [new("w_blocks", "U8", [2, 1, 8], new byte[16]), new("w_scales", "U8", [2, 1], new byte[2])]);
        using var store = WeightStore.Open(_dir);
        Assert.Contains("are not MXFP4", Assert.Throws<ModelLoadException>(store.DecodeMxfp4).Message);
    }

    [Fact]
    public void AQuantizedTinyGptOssRunsAsItsDecodedValues()
    {
        string source = TestPaths.Model("tiny-gpt-oss");
        using var packedModel = new TempModel("tiny-gpt-oss");
        using var plainModel = new TempModel("tiny-gpt-oss");
        string packed = packedModel.Dir, plain = plainModel.Dir;
        var packedEntries = new List<SafeTensorsWriter.Entry>();
        var plainEntries = new List<SafeTensorsWriter.Entry>();
        foreach (var e in SafeTensorsWriter.ReadAll(Path.Combine(source, "model.safetensors")))
        {
            if (!e.Name.EndsWith("experts.gate_up_proj", StringComparison.Ordinal) && !e.Name.EndsWith("experts.down_proj", StringComparison.Ordinal))
            {
                packedEntries.Add(e);
                plainEntries.Add(e);
                continue;
            }
            var (blocks, scales, values) = Quantize(e);
            packedEntries.Add(new(e.Name + "_blocks", "U8", [e.Shape[0], e.Shape[2], e.Shape[1] / 32, 16], blocks));
            packedEntries.Add(new(e.Name + "_scales", "U8", [e.Shape[0], e.Shape[2], e.Shape[1] / 32], scales));
            plainEntries.Add(e with { Data = values });
        }
        packedModel.EditConfig(c => c["quantization_config"] = new JsonObject
        {
            ["quant_method"] = "mxfp4", ["modules_to_not_convert"] = new JsonArray("model.layers.*.self_attn", "lm_head"),
        });
        SafeTensorsWriter.Write(packedModel.File("model.safetensors"), packedEntries);
        SafeTensorsWriter.Write(plainModel.File("model.safetensors"), plainEntries);
        var warnings = new List<string>();
        RequestOutput Run(string folder)
        {
            using var llm = new LLM(new EngineArgs { Model = folder, NumKvBlocks = 64, MaxModelLen = 256, Warn = warnings.Add });
            return llm.Generate(["The meaning of a fortune is"], new SamplingParams { Temperature = 0, MaxTokens = 12, Logprobs = 3, IgnoreEos = true })[0];
        }
        var (a, b) = (Run(packed).Outputs[0], Run(plain).Outputs[0]);
        Assert.Equal(b.TokenIds, a.TokenIds);
        Assert.Equal(b.Logprobs!.Select(l => l!.Logprob), a.Logprobs!.Select(l => l!.Logprob));
        Assert.Contains(warnings, w => w.Contains("MXFP4 experts are decoded to bfloat16"));
    }

    // An HF-layout expert stack [experts, in, out] of bfloat16 as MXFP4 (rows = out, 32 values of `in` a block), and
    // the bfloat16 values the packed form stands for, in the original layout.
    private static (byte[] Blocks, byte[] Scales, byte[] Values) Quantize(SafeTensorsWriter.Entry e)
    {
        int experts = e.Shape[0], inner = e.Shape[1], outer = e.Shape[2], groups = inner / 32;
        float At(int x, int i, int o) => BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(e.Data, 2 * ((x * inner + i) * outer + o)) << 16);
        var blocks = new byte[experts * outer * groups * 16];
        var scales = new byte[experts * outer * groups];
        var values = new byte[e.Data.Length];
        for (int x = 0; x < experts; x++)
            for (int o = 0; o < outer; o++)
                for (int g = 0; g < groups; g++)
                {
                    float amax = Enumerable.Range(0, 32).Max(j => MathF.Abs(At(x, g * 32 + j, o)));
                    int exponent = amax == 0 ? -10 : (int)MathF.Ceiling(MathF.Log2(amax / 6f));
                    int row = (x * outer + o) * groups + g;
                    scales[row] = (byte)(exponent + 127);
                    for (int j = 0; j < 32; j++)
                    {
                        int i = g * 32 + j;
                        float scaled = MathF.ScaleB(At(x, i, o), -exponent);
                        int best = Enumerable.Range(0, 16).MinBy(n => MathF.Abs(E2M1[n] - scaled));
                        blocks[row * 16 + j / 2] |= (byte)(j % 2 == 0 ? best : best << 4);
                        ushort bits = (ushort)(BitConverter.SingleToUInt32Bits(MathF.ScaleB(E2M1[best], exponent)) >> 16);
                        BitConverter.TryWriteBytes(values.AsSpan(2 * ((x * inner + i) * outer + o)), bits);
                    }
                }
        return (blocks, scales, values);
    }

    private static unsafe float[] Bf16s(ITensorFile f, TensorInfo info)
    {
        var p = (ushort*)f.GetPointer(info);
        return Enumerable.Range(0, (int)info.NumElements).Select(i => BitConverter.UInt32BitsToSingle((uint)p[i] << 16)).ToArray();
    }
}
