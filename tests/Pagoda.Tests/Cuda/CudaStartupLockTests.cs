using Pagoda.Cuda;

namespace Pagoda.Tests.Cuda;

/// <summary>Engines starting on one GPU take turns: the second waits until the first has made its KV cache.</summary>
public class CudaStartupLockTests
{
    [Fact]
    public async Task ASecondEngineWaitsUntilTheFirstReleases()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pagoda-lock-test-{Guid.NewGuid():N}.lock");
        try
        {
            var first = CudaStartupLock.Acquire(path, TimeSpan.FromSeconds(5));
            Assert.True(first.Held);
            var second = Task.Run(() => CudaStartupLock.Acquire(path, TimeSpan.FromSeconds(30)));
            await Task.Delay(300);
            Assert.False(second.IsCompleted);   // still waiting
            first.Dispose();
            using var held = await second.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(held.Held);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void WaitingTooLongSaysWhoHoldsTheGpu()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pagoda-lock-test-{Guid.NewGuid():N}.lock");
        try
        {
            using var first = CudaStartupLock.Acquire(path, TimeSpan.FromSeconds(5));
            var e = Assert.Throws<TimeoutException>(() => CudaStartupLock.Acquire(path, TimeSpan.FromMilliseconds(200)));
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
