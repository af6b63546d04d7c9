using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Pagoda.Cli.Commands;

/// <summary>Prints outputs as vLLM's basic.py does, or as one JSON RequestOutput per line.</summary>
internal static class OutputFormat
{
    private static readonly string Rule = new('-', 60);

    public static void WriteText(TextWriter w, IReadOnlyList<RequestOutput> outputs)
    {
        w.WriteLine();
        w.WriteLine("Generated Outputs:");
        w.WriteLine(Rule);
        foreach (var o in outputs)
        {
            w.WriteLine($"Prompt:    {PythonRepr.Of(o.Prompt ?? "")}");
            w.WriteLine($"Output:    {PythonRepr.Of(o.Outputs[0].Text)}");
            w.WriteLine(Rule);
        }
    }

    public static void WriteJsonLines(TextWriter w, IReadOnlyList<RequestOutput> outputs)
    {
        var options = new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        foreach (var o in outputs)
        {
            using var buffer = new MemoryStream();
            using (var j = new Utf8JsonWriter(buffer, options))
                WriteRequestOutput(j, o);
            w.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        }
    }

    public static void WriteRequestOutput(Utf8JsonWriter j, RequestOutput o)
    {
        j.WriteStartObject();
        if (o.Prompt is null)
            j.WriteNull("prompt");
        else
            j.WriteString("prompt", o.Prompt);
        WriteInts(j, "prompt_token_ids", o.PromptTokenIds);
        j.WritePropertyName("prompt_logprobs");
        if (o.PromptLogprobs is null)
            j.WriteNullValue();
        else
        {
            j.WriteStartArray();
            foreach (var lp in o.PromptLogprobs)
                WriteLogprob(j, lp);
            j.WriteEndArray();
        }
        j.WriteStartArray("outputs");
        foreach (var c in o.Outputs)
        {
            j.WriteStartObject();
            j.WriteNumber("index", c.Index);
            j.WriteString("text", c.Text);
            WriteInts(j, "token_ids", c.TokenIds);
            if (c.CumulativeLogprob is double cum)
                j.WriteNumber("cumulative_logprob", cum);
            else
                j.WriteNull("cumulative_logprob");
            j.WritePropertyName("logprobs");
            if (c.Logprobs is null)
                j.WriteNullValue();
            else
            {
                j.WriteStartArray();
                foreach (var lp in c.Logprobs)
                    WriteLogprob(j, lp);
                j.WriteEndArray();
            }
            j.WriteString("finish_reason", c.FinishReason);
            switch (c.StopReason)
            {
                case null: j.WriteNull("stop_reason"); break;
                case int id: j.WriteNumber("stop_reason", id); break;
                default: j.WriteString("stop_reason", Convert.ToString(c.StopReason, CultureInfo.InvariantCulture)); break;
            }
            j.WriteEndObject();
        }
        j.WriteEndArray();
        j.WriteEndObject();
    }

    private static void WriteLogprob(Utf8JsonWriter j, TokenLogprob? lp)
    {
        if (lp is null)
        {
            j.WriteNullValue();
            return;
        }
        j.WriteStartObject();
        j.WriteNumber("token_id", lp.TokenId);
        j.WriteNumber("logprob", lp.Logprob);
        j.WriteStartArray("top");
        foreach (var t in lp.Top)
        {
            j.WriteStartArray();
            j.WriteNumberValue(t.TokenId);
            j.WriteNumberValue(t.Logprob);
            j.WriteEndArray();
        }
        j.WriteEndArray();
        j.WriteEndObject();
    }

    private static void WriteInts(Utf8JsonWriter j, string name, IReadOnlyList<int> ids)
    {
        j.WriteStartArray(name);
        foreach (int id in ids)
            j.WriteNumberValue(id);
        j.WriteEndArray();
    }
}
