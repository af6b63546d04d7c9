using Pagoda.Backends;

namespace Pagoda.Models;

/// <summary>Bytes of a set of weight tensors, each counted once.</summary>
internal static class WeightSize
{
    public static long Of(IEnumerable<Tensor?> tensors) => tensors.OfType<Tensor>().Distinct()
        .Sum(t => t.NumElements * DTypes.SizeOf(t.DType) + (t.DType == DType.I8 ? t.Rows * sizeof(float) : 0));
}
