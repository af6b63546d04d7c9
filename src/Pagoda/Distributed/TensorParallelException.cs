namespace Pagoda.Distributed;

/// <summary>A tensor-parallel group that cannot go on: a worker that failed to start, died, or disagrees with rank 0.</summary>
public sealed class TensorParallelException(string message) : Exception(message);
