namespace Pagoda.Backends.Cpu;

/// <summary>Mixture-of-experts layers on the CPU: see <see cref="CpuMoeExperts"/> and <see cref="Moe"/>.</summary>
public sealed unsafe partial class CpuBackend : IMoeOps
{
    private Moe? _moe;

    /// <inheritdoc />
    public MoeExperts PrepareExperts(MoeExpertWeights stored) => CpuMoeExperts.Prepare(stored);

    /// <inheritdoc />
    public void FusedMoe(Tensor x, Tensor routerLogits, MoeExperts experts, MoeSpec spec, Tensor dst)
    {
        _moe ??= new Moe(_gemm, _stackedRows, _buffers);
        _moe.Run((CpuTensor)x, (CpuTensor)routerLogits, (CpuMoeExperts)experts, spec, (CpuTensor)dst);
    }
}
