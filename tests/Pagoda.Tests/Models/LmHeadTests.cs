using Pagoda.Backends;
using Pagoda.Backends.Cpu;
using Pagoda.Models;

namespace Pagoda.Tests.Models;

/// <summary>
/// The LM head's host outputs: a step's logits land in an array the head reuses for the next step of the
/// same size (valid until the next forward), different sizes keep their own arrays, and outputs too large
/// to keep are fresh every time.
/// </summary>
public class LmHeadTests
{
    [Fact]
    public void ReusesArraysBySizeAndKeepsNoHugeOnes()
    {
        using var backend = new CpuBackend();
        const int vocab = 4096, hidden = 8;   // a row of logits is 16 KB, so 64 MB hold 4096 rows
        using var weight = CpuTensor.Allocate([vocab, hidden]);
        var rng = new Random(3);
        foreach (ref float v in weight.F32)
            v = (float)rng.NextDouble();
        using var hiddenRows = CpuTensor.Allocate([4100, hidden]);
        foreach (ref float v in hiddenRows.F32)
            v = (float)rng.NextDouble();
        var head = new LmHead(backend, weight);
        float[] Project(int rows) => head.Project(hiddenRows, new ForwardBatch([], [], [], [], [0], [], Enumerable.Range(0, rows).ToArray()));

        var one = Project(1);
        Assert.Equal(vocab, one.Length);
        float first = one[7];
        Assert.Same(one, Project(1));
        Assert.Equal(first, one[7]);              // the same row projected again into the same array
        var two = Project(2);
        Assert.NotSame(one, two);
        Assert.Same(one, Project(1));
        Assert.Same(two, Project(2));
        // Five different sizes: at most four are kept; the least recently used size comes back fresh.
        var sizes = new[] { 3, 5, 6, 9 }.ToDictionary(n => n, Project);
        Assert.NotSame(one, Project(1));
        Assert.Same(sizes[9], Project(9));
        // More than 64 MB: never kept.
        var huge = Project(4100);
        Assert.NotSame(huge, Project(4100));
        // Two that fit alone but not together: the older one goes.
        var a = Project(2100);
        Assert.Same(a, Project(2100));
        var b = Project(2200);
        Assert.Same(b, Project(2200));
        Assert.NotSame(a, Project(2100));
    }
}
