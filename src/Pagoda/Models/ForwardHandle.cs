namespace Pagoda.Models;

/// <summary>
/// A forward that <see cref="IModel.ForwardAsync"/> started. While the device works the host may do other
/// work (the engine produces the previous step's outputs then); <see cref="Wait"/> blocks until the output
/// is on the host.
/// </summary>
public interface IForwardHandle
{
    /// <summary>
    /// Whether the device may still be running after ForwardAsync returned, so that work done before
    /// <see cref="Wait"/> overlaps with it. False for forwards that ran to completion (the CPU backend).
    /// </summary>
    bool IsAsynchronous { get; }

    /// <summary>Waits for the forward and returns what <see cref="IModel.Forward"/> would have; call once.</summary>
    float[] Wait();
}

/// <summary>A forward that already finished: the default for models whose forward is synchronous.</summary>
public sealed class CompletedForward(float[] output) : IForwardHandle
{
    /// <inheritdoc />
    public bool IsAsynchronous => false;

    /// <inheritdoc />
    public float[] Wait() => output;
}
