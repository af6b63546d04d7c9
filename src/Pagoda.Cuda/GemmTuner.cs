using System.Diagnostics;
using Pagoda.Cuda.Interop;

namespace Pagoda.Cuda;

/// <summary>
/// Picks, for each 16-bit GEMM shape the decode graphs run (out features m, rows n, in features k), the fastest of
/// cuBLAS's own choice (cublasGemmEx) and the algorithms cuBLASLt's heuristic lists, timed as the graphs run them: a
/// CUDA graph of back-to-back calls (PyTorch's TunableOp measures the same way). cuBLAS's first choice for a few rows
/// leaves most multiprocessors idle on the small projections (q/k/v: 32 tiles of 64 outputs). Shapes are tuned
/// while the graphs' warm-up forwards run at start-up; every other shape keeps cublasGemmEx.
/// </summary>
internal sealed unsafe class GemmTuner : IDisposable
{
    private const int Candidates = 12;
    private readonly nint _lt, _desc, _pref;
    private readonly int _type;
    private readonly ulong _workspace;
    private readonly nuint _workspaceBytes;
    private readonly Dictionary<(int M, int N, int K), Plan?> _plans = [];   // null: cublasGemmEx was the fastest

    private sealed class Plan(nint a, nint b, nint c, CublasLt.Algo algo)
    {
        public readonly nint A = a, B = b, C = c;
        public CublasLt.Algo Algo = algo;
    }

    /// <summary>What each shape measured: cublasGemmEx's and the chosen algorithm's µs per call (the same when it won).</summary>
    public List<(int M, int N, int K, double DefaultUs, double ChosenUs, int Tried)> Log { get; } = [];

    /// <summary>Milliseconds spent tuning.</summary>
    public double Milliseconds => Stopwatch.GetElapsedTime(0, _ticks).TotalMilliseconds;

    private long _ticks;

    public GemmTuner(int type, ulong workspace, nuint workspaceBytes)
    {
        (_type, _workspace, _workspaceBytes) = (type, workspace, workspaceBytes);
        Cublas.Check(CublasLt.cublasLtCreate(out _lt), "cublasLtCreate");
        Cublas.Check(CublasLt.cublasLtMatmulDescCreate(out _desc, Cublas.Compute32F, Cublas.R32F), "cublasLtMatmulDescCreate");
        int opT = Cublas.OpT, opN = Cublas.OpN;
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_desc, CublasLt.DescTransA, &opT, sizeof(int)), "cublasLtMatmulDescSetAttribute");
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_desc, CublasLt.DescTransB, &opN, sizeof(int)), "cublasLtMatmulDescSetAttribute");
        Cublas.Check(CublasLt.cublasLtMatmulPreferenceCreate(out _pref), "cublasLtMatmulPreferenceCreate");
        ulong bytes = workspaceBytes;
        Cublas.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(_pref, CublasLt.PrefMaxWorkspaceBytes, &bytes, sizeof(ulong)),
            "cublasLtMatmulPreferenceSetAttribute");
    }

    public bool IsTuned(int m, int n, int k) => _plans.ContainsKey((m, n, k));

    /// <summary>
    /// dst[n, m] = x[n, k] · weight[m, k]ᵀ with the shape's chosen algorithm; false when it has none (cublasGemmEx's
    /// turn: the shape was not tuned, or cuBLAS's own choice was the fastest).
    /// </summary>
    public bool TryRun(int m, int n, int k, ulong weight, ulong x, ulong dst, nint stream)
    {
        if (_plans.GetValueOrDefault((m, n, k)) is not { } plan)
            return false;
        Cublas.Check(Matmul(plan, plan.Algo, weight, x, dst, stream), "cublasLtMatmul");
        return true;
    }

    /// <summary>
    /// Times cublasGemmEx (<paramref name="gemmEx"/>) and each algorithm cuBLASLt's heuristic offers on these buffers
    /// (their contents are overwritten; the caller computes dst afterwards), and keeps the fastest.
    /// </summary>
    public void Tune(int m, int n, int k, ulong weight, ulong x, ulong dst, nint stream, Action gemmEx)
    {
        long t0 = Stopwatch.GetTimestamp();
        nint a = Layout(k, m), b = Layout(k, n), c = Layout(m, n);
        var found = stackalloc CublasLt.HeuristicResult[Candidates];
        int returned = 0;
        if (CublasLt.cublasLtMatmulAlgoGetHeuristic(_lt, _desc, a, b, c, c, _pref, Candidates, found, out returned) != 0)
            returned = 0;
        // Calls per graph: about 150 µs of work, from the shape's bytes at 2.5 TB/s or its flops at 500 TFLOPS.
        double estimate = Math.Max(2.0 * ((long)m * k + (long)n * k + (long)n * m) / 2.5e6, 2.0 * m * n * k / 5e8) + 3;
        int reps = (int)Math.Clamp(150 / estimate, 2, 20);
        var plan = new Plan(a, b, c, default);
        // Each candidate runs once outside capture first: a kernel's module loads on its first launch.
        gemmEx();
        var usable = new List<CublasLt.Algo>();
        for (int i = 0; i < returned; i++)
        {
            if (found[i].State == 0 && found[i].WorkspaceSize <= _workspaceBytes && Matmul(plan, found[i].Algo, weight, x, dst, stream) == 0)
                usable.Add(found[i].Algo);
        }
        Driver.Check(Driver.cuStreamSynchronize(stream), "cuStreamSynchronize");
        double best = double.MaxValue, defaultUs = Time(gemmEx, reps, stream);
        foreach (var algo in usable)
        {
            double us = Time(() => Cublas.Check(Matmul(plan, algo, weight, x, dst, stream), "cublasLtMatmul"), reps, stream);
            if (us < best)
                (best, plan.Algo) = (us, algo);
        }
        // The winner and cublasGemmEx once more each, the smaller time of each kept.
        if (best < defaultUs)
        {
            var chosen = plan.Algo;
            best = Math.Min(best, Time(() => Cublas.Check(Matmul(plan, chosen, weight, x, dst, stream), "cublasLtMatmul"), reps, stream));
            defaultUs = Math.Min(defaultUs, Time(gemmEx, reps, stream));
        }
        // cuBLASLt's algorithm only when it is clearly faster: within 3% the measurement cannot tell them apart.
        bool lt = best < 0.97 * defaultUs;
        _plans[(m, n, k)] = lt ? plan : null;
        Log.Add((m, n, k, defaultUs, lt ? best : defaultUs, usable.Count));
        if (!lt)
            Destroy(plan);
        _ticks += Stopwatch.GetTimestamp() - t0;
    }

    private int Matmul(Plan p, CublasLt.Algo algo, ulong weight, ulong x, ulong dst, nint stream)
    {
        float one = 1f, zero = 0f;
        return CublasLt.cublasLtMatmul(_lt, _desc, &one, weight, p.A, x, p.B, &zero, dst, p.C, dst, p.C, &algo, _workspace, _workspaceBytes, stream);
    }

    // Column-major rows x cols, as cuBLAS sees the row-major tensors: weight [m, k] is k x m (transposed), x [n, k]
    // is k x n, dst [n, m] is m x n.
    private nint Layout(int rows, int cols)
    {
        Cublas.Check(CublasLt.cublasLtMatrixLayoutCreate(out nint layout, _type, (ulong)rows, (ulong)cols, rows), "cublasLtMatrixLayoutCreate");
        return layout;
    }

    // µs per call: `reps` calls captured in one graph, launched once to warm up, then twice timed. A call that fails
    // (an algorithm that turns out not to run) invalidates the capture: it times as never fastest.
    private static double Time(Action call, int reps, nint stream)
    {
        Driver.Check(Driver.cuStreamBeginCapture(stream, 2 /* relaxed */), "cuStreamBeginCapture_v2");
        bool ok = true;
        try
        {
            for (int i = 0; i < reps; i++)
                call();
        }
        catch (CudaException)
        {
            ok = false;
        }
        if (Driver.cuStreamEndCapture(stream, out nint graph) != 0 || !ok)
        {
            if (graph != 0)
                Driver.cuGraphDestroy(graph);
            return double.MaxValue;
        }
        try
        {
            Driver.Check(Driver.cuGraphInstantiateWithFlags(out nint exec, graph, 0), "cuGraphInstantiateWithFlags");
            try
            {
                Driver.Check(Driver.cuGraphLaunch(exec, stream), "cuGraphLaunch");
                Driver.Check(Driver.cuStreamSynchronize(stream), "cuStreamSynchronize");
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < 2; i++)
                    Driver.Check(Driver.cuGraphLaunch(exec, stream), "cuGraphLaunch");
                Driver.Check(Driver.cuStreamSynchronize(stream), "cuStreamSynchronize");
                return Stopwatch.GetElapsedTime(t0).TotalMicroseconds / (2 * reps);
            }
            finally
            {
                Driver.cuGraphExecDestroy(exec);
            }
        }
        finally
        {
            Driver.cuGraphDestroy(graph);
        }
    }

    private static void Destroy(Plan p)
    {
        CublasLt.cublasLtMatrixLayoutDestroy(p.A);
        CublasLt.cublasLtMatrixLayoutDestroy(p.B);
        CublasLt.cublasLtMatrixLayoutDestroy(p.C);
    }

    public void Dispose()
    {
        foreach (var p in _plans.Values)
        {
            if (p != null)
                Destroy(p);
        }
        _plans.Clear();
        CublasLt.cublasLtMatmulPreferenceDestroy(_pref);
        CublasLt.cublasLtMatmulDescDestroy(_desc);
        CublasLt.cublasLtDestroy(_lt);
    }
}
