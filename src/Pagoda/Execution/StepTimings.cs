using System.Diagnostics;

namespace Pagoda.Execution;

/// <summary>
/// Where the engine's steps spend wall time, cumulatively: scheduling, building the batch, the model's
/// forward (device work included, as the host waits for it), sampling, and recording the results. Cheap
/// enough to be always on (a few timestamps per step); used by the benchmarks to tell host from device time.
/// </summary>
public sealed class StepTimings
{
    private readonly long[] _ticks = new long[7];
    private long _steps;

    /// <summary>Steps measured since the last <see cref="Reset"/>.</summary>
    public long Steps => _steps;

    /// <summary>Adds the time since <paramref name="since"/> to <paramref name="phase"/>; returns now.</summary>
    internal long Lap(StepPhase phase, long since)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)phase] += now - since;
        return now;
    }

    internal void EndStep() => _steps++;

    /// <summary>Forgets everything measured so far.</summary>
    public void Reset()
    {
        Array.Clear(_ticks);
        _steps = 0;
    }

    /// <summary>
    /// Milliseconds per step of each phase: schedule, build, forward (starting it and waiting for it), sample,
    /// update (recording the results and making the outputs).
    /// </summary>
    public (double Schedule, double Build, double Forward, double Sample, double Update) PerStepMs()
    {
        double f = Scale;
        return (_ticks[0] * f, _ticks[1] * f, (_ticks[2] + _ticks[5]) * f, _ticks[3] * f, (_ticks[4] + _ticks[6]) * f);
    }

    /// <summary>Milliseconds per step spent launching forwards (part of the forward phase of <see cref="PerStepMs"/>).</summary>
    public double LaunchMs => _ticks[(int)StepPhase.Launch] * Scale;

    /// <summary>Milliseconds per step spent making outputs (part of the update phase of <see cref="PerStepMs"/>).</summary>
    public double OutputsMs => _ticks[(int)StepPhase.Output] * Scale;

    private double Scale => 1000.0 / Stopwatch.Frequency / Math.Max(_steps, 1);

    /// <inheritdoc />
    public override string ToString()
    {
        var (s, b, f, p, u) = PerStepMs();
        // Launch (staging inputs, starting the device, then the sampling plan a device asks for once its forward
        // runs) and the outputs of a deferred step (made while the device runs the next one) are shown apart: the
        // first is host time before the wait (its plan overlaps a graph replay), the second overlaps the device.
        return $"{_steps} steps, ms/step: schedule {s:F3}, build {b:F3}, forward {f:F3} (launch {LaunchMs:F3}), " +
            $"sample {p:F3}, update {u:F3} (outputs {OutputsMs:F3}), total {s + b + f + p + u:F3}";
    }
}

/// <summary>The phases of a step that <see cref="StepTimings"/> tells apart.</summary>
internal enum StepPhase
{
    Schedule,
    Build,
    Forward,
    Sample,
    Update,
    /// <summary>Part of the forward: building device inputs and starting it, before any wait.</summary>
    Launch,
    /// <summary>Part of the update: detokenization, stop strings and outputs.</summary>
    Output,
}
