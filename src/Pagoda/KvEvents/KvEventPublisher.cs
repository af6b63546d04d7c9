namespace Pagoda.KvEvents;

/// <summary>
/// Where the engine hands each step's KV cache events (vLLM's EventPublisher). Publish is called on the engine
/// thread and must not block it; the implementation sends from its own thread.
/// </summary>
public interface IKvEventPublisher : IDisposable
{
    /// <summary>Queues one step's batch for sending, in order.</summary>
    void Publish(KvEventBatch batch);
}

/// <summary>Discards every batch (vLLM's NullEventPublisher: events off, or publisher "null").</summary>
public sealed class NullKvEventPublisher : IKvEventPublisher
{
    /// <summary>The one instance; it holds nothing.</summary>
    public static readonly NullKvEventPublisher Instance = new();

    private NullKvEventPublisher()
    {
    }

    /// <inheritdoc />
    public void Publish(KvEventBatch batch)
    {
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}

/// <summary>The publisher a config asks for (vLLM's EventPublisherFactory).</summary>
public static class KvEventPublishers
{
    /// <summary>
    /// A <see cref="ZmqEventPublisher"/> when events are on with the zmq publisher, else the null one.
    /// <paramref name="warn"/> receives the publisher's warnings (dropped batches, bad replay requests); batches carry
    /// <paramref name="dataParallelRank"/>, the replica's rank.
    /// </summary>
    public static IKvEventPublisher Create(KvEventsConfig? config, Action<string> warn, int dataParallelRank = 0) =>
        config is { PublishesOverZmq: true } ? new ZmqEventPublisher(config, warn, dataParallelRank) : NullKvEventPublisher.Instance;
}
