namespace Pagoda.Sampling;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", the generator of cuRAND and
/// PyTorch's CUDA sampling): a counter-based generator, so the uniform a request draws for its n-th output token
/// is a pure function of (its seed, n). It does not depend on the batch, on preemption or on the device: a kernel
/// computing the same function gives the same draws.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The four 32-bit outputs for <paramref name="counter"/> under <paramref name="key"/>.</summary>
    public static (uint, uint, uint, uint) Block((uint, uint, uint, uint) counter, (uint, uint) key)
    {
        var (c0, c1, c2, c3) = counter;
        var (k0, k1) = key;
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            (c0, c1, c2, c3) = ((uint)(p1 >> 32) ^ c1 ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c3 ^ k1, (uint)p0);
            (k0, k1) = (k0 + W0, k1 + W1);
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits: draw <paramref name="position"/> of the stream <paramref name="seed"/>.</summary>
    public static double Uniform(long seed, long position)
    {
        var (x0, x1, _, _) = Block(((uint)position, (uint)(position >> 32), 0, 0), ((uint)seed, (uint)(seed >> 32)));
        ulong bits = ((ulong)x0 << 21) ^ (x1 >> 11); // 53 bits
        return bits * (1.0 / (1UL << 53));
    }
}
