namespace Pagoda.Loading;

/// <summary>
/// Weights made on request, of whatever name and shape the model asks for, rather than read from files:
/// <see cref="DummyWeights"/> (`--load-format dummy`), and tests that record what a model asks for.
/// </summary>
internal interface IMadeWeights : ITensorFile
{
    /// <summary>Makes (once) a tensor of this name and shape.</summary>
    TensorInfo GetOrCreate(string name, int[] shape);

    /// <summary>Frees a tensor nothing reads any more; asking for it again is an error.</summary>
    void Release(string name);
}
