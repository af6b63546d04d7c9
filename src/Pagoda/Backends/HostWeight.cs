namespace Pagoda.Backends;

/// <summary>
/// A stored weight's bytes in host memory, as the file holds them (row-major, <see cref="DType"/>), valid
/// while the file stays open: what <see cref="IBackend.LoadWeight"/> turns into a tensor.
/// </summary>
public readonly record struct HostWeight(string Name, DType DType, int[] Shape, nint Data);
