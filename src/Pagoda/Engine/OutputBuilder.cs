using Pagoda.Sampling;
using Pagoda.Tokenization;

namespace Pagoda.Engine;

/// <summary>Turns a step's logits into sampled tokens, logprobs and stop decisions, and builds outputs.</summary>
internal static class OutputBuilder
{
    /// <summary>Row i of the prefill logits predicts prompt token i + 1.</summary>
    public static void AddPromptLogprobs(Request req, float[][] logits)
    {
        int k = req.Params.PromptLogprobs ?? 0;
        var lp = new double[logits[0].Length];
        for (int i = 0; i + 1 < req.PromptTokenIds.Length; i++)
        {
            LogprobsComputer.LogSoftmax(logits[i], lp);
            req.PromptLogprobs!.Add(LogprobsComputer.Describe(lp, req.PromptTokenIds[i + 1], k));
        }
    }

    public static void SampleAndAppend(Request req, float[] logits, IReadOnlySet<int> eosIds)
    {
        var p = req.Params;
        double[]? lp = null;
        if (p.Logprobs != null)
        {
            // Logprobs describe the raw model distribution, before penalties and temperature.
            lp = new double[logits.Length];
            LogprobsComputer.LogSoftmax(logits, lp);
        }
        int token = Sampler.Sample(logits, p, req.PromptTokenIds, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(req.OutputTokenIds), req.Rng);
        req.OutputTokenIds.Add(token);
        if (lp != null)
        {
            var described = LogprobsComputer.Describe(lp, token, p.Logprobs!.Value);
            req.Logprobs!.Add(described);
            req.CumulativeLogprob += described.Logprob;
        }

        if (!p.IgnoreEos && eosIds.Contains(token))
            req.FinishReason = "stop";
        else if (p.StopTokenIds.Contains(token))
            (req.FinishReason, req.StopReason) = ("stop", token);
        else if (req.OutputTokenIds.Count >= req.MaxTokens)
            req.FinishReason = "length";
    }

    public static RequestOutput Final(Request req, Tokenizer tokenizer)
    {
        // A stop token ends the text without appearing in it (vLLM drops it before detokenizing).
        var textIds = req.FinishReason == "stop" ? req.OutputTokenIds.Take(req.OutputTokenIds.Count - 1).ToList() : req.OutputTokenIds;
        string text = tokenizer.Decode(textIds, req.Params.SkipSpecialTokens);
        var completion = new CompletionOutput(0, text, req.OutputTokenIds.ToArray(),
            req.Logprobs != null ? req.CumulativeLogprob : null, req.Logprobs?.ToArray(), req.FinishReason, req.StopReason);
        return new RequestOutput(req.RequestId, req.Prompt, req.PromptTokenIds, req.PromptLogprobs?.ToArray(), [completion], true);
    }
}
