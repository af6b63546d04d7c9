namespace Pagoda.Engine;

/// <summary>One request failed inside the engine; the others carry on.</summary>
public sealed class RequestFailedException(string requestId, Exception inner)
    : Exception($"Request {requestId} failed inside the engine: {inner.Message}", inner)
{
    /// <summary>The failed request.</summary>
    public string RequestId { get; } = requestId;
}

/// <summary>A request the engine gave up on, and why.</summary>
public sealed record RequestFailure(string RequestId, Exception Error);
