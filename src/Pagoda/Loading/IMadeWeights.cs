using Pagoda.Backends;

namespace Pagoda.Loading;

/// <summary>
/// Weights made on request, of whatever name and shape the model asks for, rather than read from files:
/// <see cref="DummyWeights"/> (`--load-format dummy`), and tests that record what a model asks for.
/// </summary>
internal interface IMadeWeights : ITensorFile
{
    /// <summary>Makes (once) a tensor of this name and shape.</summary>
    TensorInfo GetOrCreate(string name, int[] shape);

    /// <summary>
    /// Items [first, first + count) of every run of <paramref name="runLength"/> elements of the tensor of this name and
    /// shape, made on their own and shaped <paramref name="resultShape"/> (a tensor-parallel rank's shard holds only its
    /// share, not the whole tensor), with the values the whole tensor holds there; freed with the tensor's name.
    /// </summary>
    HostWeight MakeRuns(string name, int[] shape, long runLength, long first, long count, int[] resultShape);

    /// <summary>Frees a tensor (and every part of it made) nothing reads any more; asking for it again is an error.</summary>
    void Release(string name);
}
