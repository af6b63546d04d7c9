namespace Pagoda.Tests.Sampling;

/// <summary>Every validation error, in vLLM's words.</summary>
public class SamplingParamsTests
{
    public static IEnumerable<object[]> Invalid() =>
    [
        [new SamplingParams { N = 0 }, "n must be at least 1, got 0."],
        [new SamplingParams { PresencePenalty = 2.5 }, "presence_penalty must be in [-2, 2], got 2.5."],
        [new SamplingParams { FrequencyPenalty = -3 }, "frequency_penalty must be in [-2, 2], got -3."],
        [new SamplingParams { RepetitionPenalty = 0 }, "repetition_penalty must be greater than zero, got 0."],
        [new SamplingParams { Temperature = -1 }, "temperature must be non-negative, got -1."],
        [new SamplingParams { Temperature = double.NaN }, "temperature must be non-negative, got NaN."],
        [new SamplingParams { TopP = 0 }, "top_p must be in (0, 1], got 0."],
        [new SamplingParams { TopP = 1.5 }, "top_p must be in (0, 1], got 1.5."],
        [new SamplingParams { TopK = -2 }, "top_k must be 0 (disable), or at least 1, got -2."],
        [new SamplingParams { MinP = 1.5 }, "min_p must be in [0, 1], got 1.5."],
        [new SamplingParams { MaxTokens = 0 }, "max_tokens must be at least 1, got 0."],
        [new SamplingParams { MinTokens = -1 }, "min_tokens must be greater than or equal to 0, got -1."],
        [new SamplingParams { MinTokens = 20, MaxTokens = 10 }, "min_tokens must be less than or equal to max_tokens=10, got 20."],
        [new SamplingParams { Logprobs = -1 }, "logprobs must be non-negative, got -1."],
        [new SamplingParams { PromptLogprobs = -1 }, "prompt_logprobs must be non-negative, got -1."],
        [new SamplingParams { Stop = ["ok", ""] }, "stop cannot contain an empty string."],
        [new SamplingParams { AllowedTokenIds = [] }, "allowed_token_ids is not None and empty!"],
        [new SamplingParams { LogitBias = new Dictionary<int, double> { [1] = double.PositiveInfinity } }, "logit_bias values must be finite numbers."],
    ];

    [Theory, MemberData(nameof(Invalid))]
    public void RejectsWithVllmMessage(SamplingParams p, string message) =>
        Assert.Equal(message, Assert.Throws<ArgumentException>(p.Validate).Message);

    [Fact]
    public void TokenIdsOutsideTheVocabulary()
    {
        Assert.Contains("allowed_token_ids contains out-of-vocab token id 10",
            Assert.Throws<ArgumentException>(() => new SamplingParams { AllowedTokenIds = [1, 10] }.ValidateTokenIds(10)).Message);
        Assert.Contains("token_id -1 in logit_bias is out of vocabulary",
            Assert.Throws<ArgumentException>(() => new SamplingParams { LogitBias = new Dictionary<int, double> { [-1] = 1 } }.ValidateTokenIds(10)).Message);
    }

    [Fact]
    public void DefaultsAreValid() => new SamplingParams().Validate();
}
