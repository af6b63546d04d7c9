namespace Pagoda.Loading;

/// <summary>
/// A weight file opened for loading: safetensors (memory-mapped) or a PyTorch checkpoint (copied into
/// native memory). Pointers stay valid while the file is open.
/// </summary>
public unsafe interface ITensorFile : IDisposable
{
    /// <summary>The file this was opened from.</summary>
    string FilePath { get; }

    /// <summary>Every usable tensor in the file by name.</summary>
    IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>A pointer to one tensor's bytes, contiguous and row-major.</summary>
    byte* GetPointer(TensorInfo info);
}
