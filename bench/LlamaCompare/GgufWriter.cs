using System.Text;
using Pagoda.Backends;
using Pagoda.Loading;
using Pagoda.Models;

namespace LlamaCompare;

/// <summary>
/// Writes Pagoda's dummy weights of a Qwen2 config as a GGUF v3 file that llama.cpp loads: F16 (the
/// bf16 values rounded to half) or Q8_0 (blocks of 32 with a half scale), with 1-D tensors in F32 as
/// llama.cpp's converter stores them. The vocabulary is filler: byte-level tokens for the 256 bytes
/// (llama.cpp looks some up) and unique placeholders for the rest; the benchmark feeds token ids.
/// </summary>
internal static unsafe class GgufWriter
{
    public enum Format { F16 = 1, Q8_0 = 8 }

    private const int Alignment = 32;

    public static void Write(string path, ModelConfig c, ITensorFile weights, Format format)
    {
        if (c.Architecture != "Qwen2ForCausalLM")
            throw new NotSupportedException($"the GGUF writer handles Qwen2 configs only, not {c.Architecture}");
        var tensors = weights.Tensors.Values.Select(t => (Name: GgufName(t.Name), Info: t)).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();

        using var stream = new FileStream(path + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var w = new BinaryWriter(stream);
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        var meta = Metadata(c, format);
        w.Write((ulong)meta.Count);
        foreach (var (key, write) in meta)
        {
            WriteString(w, key);
            write(w);
        }

        long offset = 0;
        var types = new List<(uint Type, long Bytes)>();
        foreach (var (name, info) in tensors)
        {
            uint type = info.Shape.Length == 1 ? 0u : (uint)format;   // 0 = F32
            long elements = info.Shape.Aggregate(1L, (a, b) => a * b);
            long bytes = type switch { 0 => elements * 4, 1 => elements * 2, _ => elements / 32 * 34 };
            WriteString(w, name);
            w.Write((uint)info.Shape.Length);
            foreach (int d in info.Shape.Reverse())      // GGUF lists the fastest-varying dimension first
                w.Write((ulong)d);
            w.Write(type);
            w.Write((ulong)offset);
            types.Add((type, bytes));
            offset += (bytes + Alignment - 1) / Alignment * Alignment;
        }
        Pad(w);
        for (int i = 0; i < tensors.Count; i++)
        {
            var info = tensors[i].Info;
            var values = Widen(weights, info);
            switch (types[i].Type)
            {
                case 0: foreach (float v in values) w.Write(v); break;
                case 1: foreach (float v in values) w.Write((Half)v); break;
                default: WriteQ8_0(w, values); break;
            }
            Pad(w);
        }
        w.Flush();
        stream.Close();
        File.Move(path + ".tmp", path, overwrite: true);
    }

    private static float[] Widen(ITensorFile file, TensorInfo info)
    {
        long n = info.Shape.Aggregate(1L, (a, b) => a * b);
        var v = new float[n];
        byte* p = file.GetPointer(info);
        for (long i = 0; i < n; i++)
        {
            v[i] = info.DType switch
            {
                DType.F32 => ((float*)p)[i],
                DType.F16 => (float)((Half*)p)[i],
                _ => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16),
            };
        }
        return v;
    }

    private static void WriteQ8_0(BinaryWriter w, float[] values)
    {
        for (int b = 0; b < values.Length; b += 32)
        {
            float max = 0;
            for (int i = 0; i < 32; i++)
                max = MathF.Max(max, MathF.Abs(values[b + i]));
            float d = max / 127f, id = d == 0 ? 0 : 1f / d;
            w.Write((Half)d);
            for (int i = 0; i < 32; i++)
                w.Write((sbyte)MathF.Round(values[b + i] * id));
        }
    }

    private static void Pad(BinaryWriter w)
    {
        while (w.BaseStream.Position % Alignment != 0)
            w.Write((byte)0);
    }

    private static string GgufName(string hf)
    {
        string s = hf.Replace("model.embed_tokens.", "token_embd.").Replace("model.norm.", "output_norm.").Replace("lm_head.", "output.");
        s = s.Replace("model.layers.", "blk.").Replace(".input_layernorm.", ".attn_norm.").Replace(".post_attention_layernorm.", ".ffn_norm.");
        s = s.Replace(".self_attn.q_proj.", ".attn_q.").Replace(".self_attn.k_proj.", ".attn_k.").Replace(".self_attn.v_proj.", ".attn_v.");
        s = s.Replace(".self_attn.o_proj.", ".attn_output.").Replace(".mlp.gate_proj.", ".ffn_gate.").Replace(".mlp.up_proj.", ".ffn_up.");
        return s.Replace(".mlp.down_proj.", ".ffn_down.");
    }

    private static List<(string Key, Action<BinaryWriter> Write)> Metadata(ModelConfig c, Format format)
    {
        Action<BinaryWriter> U32(int v) => w => { w.Write(4u); w.Write((uint)v); };
        Action<BinaryWriter> F32(double v) => w => { w.Write(6u); w.Write((float)v); };
        Action<BinaryWriter> Str(string v) => w => { w.Write(8u); WriteString(w, v); };
        var tokens = Vocabulary(c.VocabSize);
        return
        [
            ("general.architecture", Str("qwen2")),
            ("general.name", Str("pagoda-dummy")),
            ("general.file_type", U32(format == Format.F16 ? 1 : 7)),
            ("general.alignment", U32(Alignment)),
            ("qwen2.block_count", U32(c.NumLayers)),
            ("qwen2.context_length", U32(c.MaxPositionEmbeddings)),
            ("qwen2.embedding_length", U32(c.HiddenSize)),
            ("qwen2.feed_forward_length", U32(c.IntermediateSize)),
            ("qwen2.attention.head_count", U32(c.NumHeads)),
            ("qwen2.attention.head_count_kv", U32(c.NumKvHeads)),
            ("qwen2.rope.freq_base", F32(c.RopeTheta)),
            ("qwen2.attention.layer_norm_rms_epsilon", F32(c.NormEps)),
            ("tokenizer.ggml.model", Str("gpt2")),
            ("tokenizer.ggml.pre", Str("qwen2")),
            ("tokenizer.ggml.tokens", w => { w.Write(9u); w.Write(8u); w.Write((ulong)tokens.Length); foreach (var t in tokens) WriteString(w, t); }),
            ("tokenizer.ggml.token_type", w => { w.Write(9u); w.Write(5u); w.Write((ulong)tokens.Length); foreach (var _ in tokens) w.Write(1); }),
            ("tokenizer.ggml.merges", w => { w.Write(9u); w.Write(8u); w.Write(0UL); }),
        ];
    }

    // GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the rest are shifted
    // to U+0100 onwards in byte order.
    private static string[] Vocabulary(int size)
    {
        var tokens = new string[size];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            tokens[b] = ((char)(printable ? b : 256 + shifted++)).ToString();
        }
        for (int i = 256; i < size; i++)
            tokens[i] = $"<filler_{i}>";
        return tokens;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
