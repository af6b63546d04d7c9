using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// e^x for eight floats, inlined into its callers. <c>Vector256.Exp</c> is too large to inline, so a kernel
/// compiled optimized calls the framework's precompiled copy, which runs without AVX (2.7-4.5 ns an element
/// here against 0.6 once the runtime recompiles it, after 30 calls and a quiet moment that a short run or a
/// busy start-up does not reach): softmax and SiLU ran several times slower in every short run. This one is the
/// textbook reduction e^x = 2^n · e^r with n = round(x / ln 2), r = x − n · ln 2 in two parts, and a degree-7
/// Taylor polynomial for e^r on |r| ≤ ln 2 / 2; within 2 ulp of the exact value (tests/…/VecExpTests.cs), 0 below
/// e^-87.3 (where float's normal range ends), +∞ above e^88.7, NaN for NaN.
/// </summary>
internal static class VecExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693145751953125f;          // ln 2's leading bits: n · Ln2Hi is exact for |n| ≤ 128
    private const float Ln2Lo = 1.428606765330187045e-06f;  // ln 2 − Ln2Hi
    private const float Lowest = -87.33654f;                // e^x under float's smallest normal: 0
    private const float Highest = 88.72283f;                // e^x over float's largest value: +∞

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var clamped = Vector256.Min(Vector256.Max(x, Vector256.Create(Lowest)), Vector256.Create(Highest));
        // n = round(x · log2 e): adding 1.5 · 2^23 leaves no bits below the units, and n's value in the low bits.
        var magic = Vector256.Create(12582912f);
        var t = Vector256.FusedMultiplyAdd(clamped, Vector256.Create(Log2E), magic);
        var n = t - magic;
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), clamped);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        // 1 + r + r²/2! + … + r⁷/7!, by Horner.
        var p = Vector256.Create(1f / 5040);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 720));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 120));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 24));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(0.5f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        // 2^n in two factors, so that n = -126 … 128 stays within float's exponents.
        var ni = t.AsInt32() - magic.AsInt32();
        var half = ni >> 1;
        var result = p * Pow2(half) * Pow2(ni - half);
        result = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Lowest)), Vector256<float>.Zero, result);
        result = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(Highest)), Vector256.Create(float.PositiveInfinity), result);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary>The same function for one float (a loop's tail), so that every element gets the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x) => Exp(Vector256.Create(x)).ToScalar();

    // 2^k for k in [-126, 127]: k + 127 in the exponent bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Pow2(Vector256<int> k) => ((k + Vector256.Create(127)) << 23).AsSingle();
}
