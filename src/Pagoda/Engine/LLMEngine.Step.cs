using System.Diagnostics;
using Pagoda.Distributed;
using Pagoda.Execution;
using Pagoda.KvEvents;
using Pagoda.Requests;
using Pagoda.Scheduling;

namespace Pagoda.Engine;

/// <summary>
/// The engine's step: schedule, launch the forward, process the previous step's outputs while it runs, finish and
/// sample, record, and the failures of the requests whose processing threw.
/// </summary>
public sealed partial class LLMEngine
{
    /// <summary>
    /// Schedules, runs and samples one step; returns the outputs it produced. A request whose own processing
    /// throws (batch preparation, sampling, detokenization) is ended and its blocks freed; it is reported by
    /// <see cref="TakeFailures"/> while the others go on. A failing forward fails the requests of its batch.
    /// </summary>
    /// <remarks>
    /// When the model's forward runs asynchronously (CUDA graph replays), a step's outputs come from the next
    /// call (vLLM's async scheduling, in a light form): the scheduler records step n at once (tokens, EOS,
    /// max_tokens, stop token ids, freed blocks), but detokenization, stop strings and building outputs for
    /// step n run while the device computes step n+1. A request a stop string ends there may already be in
    /// step n+1: it is finished then and its token of step n+1 dropped. Freeing its blocks while the forward
    /// still writes them is safe because blocks are only handed out again by the next Schedule, after the wait.
    /// </remarks>
    public IReadOnlyList<RequestOutput> Step()
    {
        try
        {
            return StepOnce();
        }
        finally
        {
            // vLLM's scheduler publishes the step's KV cache events once the step is recorded.
            PublishKvEvents();
        }
    }

    /// <summary>
    /// Forgets every cached prefix (vLLM's reset_prefix_cache), publishing AllBlocksCleared at once; false, changing
    /// nothing, while any request holds blocks.
    /// </summary>
    public bool ResetPrefixCache()
    {
        bool reset = _scheduler.KvCache.Pool.ResetPrefixCache();
        PublishKvEvents();
        return reset;
    }

    // The KV cache events recorded since the last batch, as one batch (none when there are none, as in vLLM).
    private void PublishKvEvents()
    {
        var events = _scheduler.KvCache.TakeEvents();
        if (events.Count > 0)
            _kvEvents.Publish(KvEventBatch.Now(events));
    }

    private List<RequestOutput> StepOnce()
    {
        ProcessKvTransfers();
        var scheduled = Schedule();
        StartRemoteLoads(scheduled);
        _stalled = _connector != null && scheduled.IsEmpty && scheduled.RemoteLoads.Count == 0 && _deferred == null;
        long started = Stopwatch.GetTimestamp();
        var launched = Try(() => _runner.Launch(scheduled), out var error);
        // The previous step's outputs, made while the device runs this one.
        var outputs = ProcessDeferredOutputs();
        var run = launched is null ? null : Try(() => _runner.Finish(launched), out error);
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (run is null)
        {
            // Nothing of this step was recorded: failing its requests frees their blocks and leaves the rest intact.
            foreach (var s in scheduled.Scheduled)
                Fail(s.Request.RequestId, error!);
            return outputs;
        }
        long t0 = Stopwatch.GetTimestamp();
        scheduled = Record(scheduled, run, seconds);
        ProposeDrafts(scheduled, run, launched!);
        if (launched!.IsAsynchronous)
            _deferred = (scheduled, run);
        else
            outputs.AddRange(ProcessOutputs(scheduled, run));
        Timings.Lap(StepPhase.Update, t0);
        Timings.EndStep();
        return outputs;
    }

    private SchedulerOutput Schedule()
    {
        long t0 = Stopwatch.GetTimestamp();
        var scheduled = _scheduler.Schedule();
        Timings.Lap(StepPhase.Schedule, t0);
        return scheduled;
    }

    // The runner's launch or finish; null with the exception when it threw (the forward's own failure fails the batch).
    // A tensor-parallel group that lost a worker cannot run another step: that escapes, and the engine is dead.
    private static T? Try<T>(Func<T> step, out Exception? error) where T : class
    {
        error = null;
        try
        {
            return step();
        }
        catch (Exception e) when (e is not OutOfMemoryException and not TensorParallelException)
        {
            error = e;
            return null;
        }
    }

    // The scheduler records the step: failures end their prompts, recomputed requests go back to waiting,
    // computed counts and sampled tokens advance. Returns the part of the step that was recorded.
    private SchedulerOutput Record(SchedulerOutput scheduled, ModelRunnerOutput run, double seconds)
    {
        foreach (var (id, e) in run.Failed)
            Fail(id, e);
        _scheduler.Recompute(run.Recompute);
        // Siblings of a failed sequence were ended with it, recomputed requests went back to waiting, and the
        // previous step's stop strings or failures may have ended requests of this one: it is recorded for the others only.
        if (scheduled.Scheduled.Any(s => s.Request.Status != RequestStatus.Running))
            scheduled = scheduled with { Scheduled = scheduled.Scheduled.Where(s => s.Request.Status == RequestStatus.Running).ToList() };
        foreach (var s in scheduled.Scheduled)
        {
            _generationTokens -= s.Request.NumOutputTokens;
            _firstTokens -= s.Request.NumOutputTokens > 0 ? 1 : 0;
        }
        _spec?.RecordStep(scheduled, run.SampledTokens, seconds);
        _scheduler.Update(scheduled, run.SampledTokens);
        foreach (var s in scheduled.Scheduled)
        {
            _generationTokens += s.Request.NumOutputTokens;
            _firstTokens += s.Request.NumOutputTokens > 0 ? 1 : 0;
        }
        if (_connector != null)
            HoldFinishedPrefills();
        return scheduled;
    }

    // Outputs of a step whose processing was deferred to overlap the next forward (none when nothing waits).
    private List<RequestOutput> ProcessDeferredOutputs()
    {
        if (_deferred is not var (scheduled, run))
            return [];
        long t0 = Stopwatch.GetTimestamp();
        _deferred = null;
        var outputs = ProcessOutputs(scheduled, run);
        Timings.Lap(StepPhase.Output, t0);
        return outputs;
    }

    // Detokenization, stop strings and outputs of a step the scheduler has recorded.
    private List<RequestOutput> ProcessOutputs(SchedulerOutput scheduled, ModelRunnerOutput run)
    {
        var (outputs, stopped, failed) = _output.Process(scheduled, run);
        foreach (var (id, e) in failed)
            Fail(id, e);
        _scheduler.FinishRequests(stopped, RequestStatus.FinishedStopped);
        return AttachKvTransferParams(outputs);
    }

    /// <summary>Requests that failed in the steps since the last call (each is already ended and freed).</summary>
    public IReadOnlyList<RequestFailure> TakeFailures()
    {
        if (_failures.Count == 0)
            return [];
        var taken = _failures.ToList();
        _failures.Clear();
        return taken;
    }

    // Ends the prompt a failed sequence belongs to (all its sequences), as an abort does, and records why.
    private void Fail(string childId, Exception e)
    {
        // A sequence whose prompt is no longer known was already ended with it (blocks freed) in this step.
        if (_output.ParentOf(childId) is not { } parent)
            return;
        Abort(parent);
        _failures.Add(new RequestFailure(parent, e));
    }
}
