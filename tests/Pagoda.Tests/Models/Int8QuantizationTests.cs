using Pagoda.Tests.Support;
using Xunit.Abstractions;

namespace Pagoda.Tests.Models;

/// <summary>
/// Weight-only int8 against the unquantized (bf16) model on the golden prompts: each golden prompt plus
/// its golden output is scored teacher-forced by both, and the per-token logprob deltas and top-1
/// agreement are bounded. The measured numbers are printed for docs/BENCHMARKS.md.
/// </summary>
public class Int8QuantizationTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("fortune-chat", 0.05, 0.97)]
    [InlineData("tiny-llama", 0.05, 0.90)]
    [InlineData("tiny-qwen3", 0.05, 0.90)]
    public void Int8LogprobsStayCloseToTheBf16Model(string model, double maxMeanDelta, double minTop1Agreement)
    {
        var sequences = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1]))
            .Select(g => g.PromptIds.Concat(g.OutputIds).Where(id => id is not (8192 or 8194)).ToArray()).ToList();
        var p = new SamplingParams { Temperature = 0, MaxTokens = 1, PromptLogprobs = 1 };
        var inputs = sequences.Select(s => PromptInput.FromTokenIds(s)).ToList();
        var reference = SharedModels.Use(model, llm => llm.Generate(inputs, p));
        using var int8 = new LLM(new EngineArgs { Model = TestPaths.Model(model), Quantization = "int8" });
        var quantized = int8.Generate(inputs, p);

        var deltas = new List<double>();
        int agree = 0;
        for (int i = 0; i < inputs.Count; i++)
        {
            for (int t = 1; t < sequences[i].Length; t++)
            {
                var a = reference[i].PromptLogprobs![t]!;
                var b = quantized[i].PromptLogprobs![t]!;
                deltas.Add(Math.Abs(a.Logprob - b.Logprob));
                agree += a.Top[0].TokenId == b.Top[0].TokenId ? 1 : 0;
            }
        }
        double mean = deltas.Average(), max = deltas.Max(), top1 = (double)agree / deltas.Count;
        log.WriteLine($"{model}: {deltas.Count} tokens, mean |Δlogprob| {mean:F4}, max {max:F4}, top-1 agreement {top1:P1}");
        Assert.True(mean <= maxMeanDelta, $"mean |Δlogprob| {mean}");
        Assert.True(top1 >= minTop1Agreement, $"top-1 agreement {top1}");
    }

    [Fact]
    public void BatchInvariantInt8OutputsDoNotDependOnTheBatch()
    {
        // Bit-equal logprobs alone and batched are batch-invariant mode's promise, not the default's.
        using var llm = new LLM(new EngineArgs { Model = TestPaths.Model("fortune-chat"), Quantization = "int8", BatchInvariant = true });
        var p = new SamplingParams { Temperature = 0, MaxTokens = 12, Logprobs = 1, IgnoreEos = true };
        PromptInput target = "The meaning of life is";
        var alone = llm.Generate([target], p)[0].Outputs[0];
        var others = Enumerable.Range(0, 7).Select(i => (PromptInput)$"Fortune number {i} says").Prepend(target).ToList();
        var batched = llm.Generate(others, p)[0].Outputs[0];
        Assert.Equal(alone.TokenIds, batched.TokenIds);
        Assert.Equal(alone.Logprobs!.Select(l => l.Logprob), batched.Logprobs!.Select(l => l.Logprob));
    }

    [Fact]
    public void OptRejectsInt8()
    {
        var e = Assert.Throws<ArgumentException>(() => new LLM(new EngineArgs { Model = TestPaths.Model("tiny-opt"), Quantization = "int8" }));
        Assert.Contains("int8", e.Message);
    }
}
