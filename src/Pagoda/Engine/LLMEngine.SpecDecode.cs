using Pagoda.Execution;
using Pagoda.Requests;
using Pagoda.Scheduling;
using Pagoda.SpecDecode;

namespace Pagoda.Engine;

/// <summary>Speculative decoding in the engine loop (`--speculative-config`): drafts proposed once a step is recorded.</summary>
public sealed partial class LLMEngine
{
    private readonly SpecDecoder? _spec;

    /// <summary>Speculative decoding's counters (null without `--speculative-config`).</summary>
    public SpecDecodingStats? SpecDecodingStats => _spec?.Stats;

    // Checked before anything is loaded.
    private static void CheckSpeculativeConfig(SpeculativeConfig? config)
    {
        if (config?.UsesDraftModel == true)
            throw new ArgumentException("--speculative-config: draft models are not supported yet; prompt lookup is ({\"method\": \"ngram\", \"num_speculative_tokens\": 4}).");
    }

    // The drafts the next step verifies, for each request that sampled in this one and runs on.
    private void ProposeDrafts(SchedulerOutput recorded, ModelRunnerOutput run)
    {
        if (_spec == null)
            return;
        var sampled = new List<Request>(recorded.Scheduled.Count);
        foreach (var s in recorded.Scheduled)
        {
            if (s.Request.Status == RequestStatus.Running && run.SampledTokens.ContainsKey(s.Request.RequestId))
                sampled.Add(s.Request);
        }
        if (sampled.Count > 0)
            _spec.Propose(sampled, _scheduler.NumRunning);
    }
}
