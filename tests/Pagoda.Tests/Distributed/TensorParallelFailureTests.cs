using System.Diagnostics;
using Pagoda.Distributed;
using Pagoda.Tests.Support;

namespace Pagoda.Tests.Distributed;

/// <summary>
/// A tensor-parallel engine that cannot start, or loses a worker, says why and does not hang: a worker that cannot
/// be started, one that exits at once, a shape that does not divide, and a worker
/// killed while requests run.
/// </summary>
[Collection("tensor-parallel workers")]   // one group at a time: a test finds its worker among this process's children
public class TensorParallelFailureTests
{
    private static EngineArgs Args() =>
        new() { Model = TestPaths.Model("fortune-chat"), TensorParallelSize = 2, WorkerCommand = TensorParallelTests.Worker };

    [Fact]
    public void AWorkerThatCannotStartIsNamed()
    {
        var e = Assert.Throws<TensorParallelException>(() => new LLM(Args() with { WorkerCommand = ["/nonexistent/pagoda", "tp-worker"] }));
        Assert.StartsWith("could not start tensor-parallel worker 1 (/nonexistent/pagoda tp-worker)", e.Message);
    }

    [Fact]
    public void AWorkerThatExitsAtOnceIsReportedWithItsOutput()
    {
        var e = Assert.Throws<TensorParallelException>(() => new LLM(Args() with { WorkerCommand = ["sh", "-c", "echo no GPU here >&2; exit 3", "sh"] }));
        Assert.Equal("tensor-parallel worker 1 exited with code 3: no GPU here", e.Message);
    }

    [Fact]
    public void ShapesThatDoNotDivideAreRefused()
    {
        var heads = Assert.Throws<ArgumentException>(() => new LLM(Args() with { TensorParallelSize = 3 }));
        Assert.Equal("tensor parallelism: num_attention_heads (4) is not divisible by --tensor-parallel-size 3.", heads.Message);
        Assert.Contains("between 1 and 8", Assert.Throws<ArgumentException>(() => new LLM(Args() with { TensorParallelSize = 9 })).Message);
    }

    [Fact]
    public void AKilledWorkerFailsTheStepWithItsExitInsteadOfAHang()
    {
        using var llm = new LLM(Args());
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = 8 };
        Assert.Single(llm.Generate(["Tell me a fortune."], [sampling]));
        var worker = WorkersOf(Environment.ProcessId).Single();
        worker.Kill();
        worker.WaitForExit();
        var e = Assert.Throws<TensorParallelException>(() => llm.Generate(["Another fortune, please."], [sampling]));
        Assert.StartsWith("tensor-parallel worker 1 exited with code", e.Message);
    }

    [Fact]
    public void AWorkerWhoseModelDiffersFromRankZerosSaysSo()
    {
        // The worker's side in this process: a job whose config.json hash is not the folder's.
        using var group = SharedMemoryGroup.Create(2);
        string folder = TestPaths.Model("fortune-chat");
        var job = new Pagoda.Engine.WorkerJob(folder, "auto", "auto", null, 256, 8, 16, new Pagoda.Backends.BackendOptions { CpuThreads = 1 }, "00",
            "cpu", null, new Pagoda.Engine.ExecutionShape(8, 256, false, 0), 2);
        group.Post(BatchMessage.Job, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(job));
        var error = new StringWriter();
        Assert.Equal(1, Pagoda.Engine.TensorParallelWorker.Run(() => SharedMemoryGroup.Join(group.Path, 1, 2), 1, Environment.ProcessId, null, error, []));
        string expected = $"this rank's {Path.Combine(folder, "config.json")} differs from rank 0's.";
        Assert.Equal(expected, group.FailureOf(1));
        Assert.Contains(expected, error.ToString());
    }

    // This process's tp-worker children, found by the parent id on their command line.
    private static List<Process> WorkersOf(int pid) =>
        [.. Directory.GetDirectories("/proc").Select(d => Path.GetFileName(d)).Where(n => n.All(char.IsDigit))
            .Where(n => { try { var cmd = File.ReadAllText($"/proc/{n}/cmdline"); return cmd.Contains("tp-worker") && cmd.Contains($"--parent\0{pid}\0"); } catch (IOException) { return false; } catch (UnauthorizedAccessException) { return false; } })
            .Select(n => Process.GetProcessById(int.Parse(n)))];
}
