namespace Pagoda.Backends.Cpu;

/// <summary>
/// Stacked q/k/v and gate/up projections: one pool dispatch each instead of three and two (decode issues
/// one per op per layer, and the small k and v projections alone cannot keep both cores busy), with the
/// bias, RoPE and KV store or the SiLU·mul done right after on the stacked output. The weights are not
/// copied (see <see cref="CpuTensor.StackView"/>), so memory-mapped weights stay mapped.
/// </summary>
public sealed unsafe partial class CpuBackend : IMergedProjectionOps
{
    /// <inheritdoc />
    public Tensor StackRows(params Tensor[] parts)
    {
        if (parts.Length == 0)
            throw new ArgumentException("nothing to stack", nameof(parts));
        var cpu = parts.Cast<CpuTensor>().ToArray();
        if (parts[0].Shape.Length != 1)
            return CpuTensor.StackView(cpu);
        // Biases are read as float32 vectors anyway: concatenate them (exact for every stored dtype).
        var stacked = CpuTensor.Allocate([checked((int)parts.Sum(p => p.NumElements))], zero: false);
        int offset = 0;
        foreach (var p in cpu)
        {
            p.AsFloatVector().CopyTo(stacked.F32[offset..]);
            offset += (int)p.NumElements;
        }
        return stacked;
    }

    /// <inheritdoc />
    public void QkvRopeStore(Tensor qkv, Tensor? bias, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<int> positions,
        RotaryParams rope, PagedKvCache cache, int layer, ReadOnlySpan<int> slotMapping, Tensor q) =>
        _stackedRows.QkvRopeStore((CpuTensor)qkv, (CpuTensor?)bias, numHeads, numKvHeads, headDim, positions, rope,
            (CpuTensor)cache.Keys[layer], (CpuTensor)cache.Values[layer], slotMapping, (CpuTensor)q);

    /// <inheritdoc />
    public void SiluMulStacked(Tensor gateUp, Tensor dst) => _stackedRows.SiluMul((CpuTensor)gateUp, (CpuTensor)dst);
}
