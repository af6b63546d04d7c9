namespace Pagoda.Backends;

/// <summary>
/// A dense row-major tensor owned by a backend. Kernels read it as a matrix of
/// <see cref="Rows"/> × <see cref="Cols"/> (the last dimension), whatever its rank.
/// </summary>
public abstract class Tensor : IDisposable
{
    /// <summary>Creates a tensor descriptor.</summary>
    protected Tensor(DType dtype, int[] shape)
    {
        DType = dtype;
        Shape = shape;
        Cols = shape.Length == 0 ? 1 : shape[^1];
        Rows = shape.Length <= 1 ? 1 : checked((int)(shape.Aggregate(1L, (a, b) => a * b) / Math.Max(Cols, 1)));
    }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Full shape.</summary>
    public int[] Shape { get; }

    /// <summary>Product of all but the last dimension.</summary>
    public int Rows { get; }

    /// <summary>The last dimension.</summary>
    public int Cols { get; }

    /// <summary>Total element count.</summary>
    public long NumElements => (long)Rows * Cols;

    /// <inheritdoc />
    public virtual void Dispose() => GC.SuppressFinalize(this);
}
