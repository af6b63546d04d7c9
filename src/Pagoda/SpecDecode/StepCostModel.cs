namespace Pagoda.SpecDecode;

/// <summary>
/// What a decode step costs as a function of the tokens it computes, T(n) = a + b·n, fitted online by exponentially
/// weighted least squares over the engine's decode steps (with and without drafts, so n varies). Until the steps have
/// varied enough to fit b, b is <see cref="PriorRatio"/>·a of the mean time seen. The fit is what makes proposal lengths
/// adapt: on a GPU or a small CPU batch a verified token costs little next to the step (weights read once), while a
/// large batch on the CPU pays for each. A fitted line with no fixed part (a ≤ 0: verification steps much dearer than
/// plain ones, as an H100's q > 1 kernels are) means a token costs about the whole step, not the prior's little (on an
/// H100 at 16 requests speculation ran 8-10% slower than none while such fits fell back to the prior).
/// </summary>
public sealed class StepCostModel(double priorRatio = 0.05, double decay = 0.97)
{
    private double _w, _n, _t, _nn, _nt;   // decayed sums: weight, n, t, n², n·t

    /// <summary>b / a before the fit: a verified token's share of a one-token step.</summary>
    public double PriorRatio { get; } = priorRatio;

    /// <summary>Steps recorded.</summary>
    public int Count { get; private set; }

    /// <summary>Records a decode step of <paramref name="tokens"/> tokens that took <paramref name="seconds"/>.</summary>
    public void Record(int tokens, double seconds)
    {
        (_w, _n, _t, _nn, _nt) = (decay * _w + 1, decay * _n + tokens, decay * _t + seconds, decay * _nn + (double)tokens * tokens, decay * _nt + tokens * seconds);
        Count++;
    }

    /// <summary>The fitted (a, b) in seconds; null before any step.</summary>
    public (double A, double B)? Fit()
    {
        if (_w == 0)
            return null;
        double meanN = _n / _w, meanT = _t / _w;
        double varN = _nn / _w - meanN * meanN;
        // Enough spread in n to trust a slope (tokens vary by at least one around the mean).
        if (varN >= 0.25)
        {
            double b = (_nt / _w - meanN * meanT) / varN;
            double a = meanT - b * meanN;
            if (b < 0)   // noise: a verified token costs nothing measurable
                return (meanT, 0);
            // A line through zero or below: a step costs its tokens and little else. Drafts cannot pay there; keep a
            // token's cost near the whole step.
            a = Math.Max(a, 0.01 * meanT);
            return (a, (meanT - a) / meanN);
        }
        double a0 = meanT / (1 + PriorRatio * meanN);
        return (a0, PriorRatio * a0);
    }
}
