namespace Pagoda.SpecDecode;

/// <summary>
/// vLLM's speculative decoding counters since start: verifications with drafts (drafts), draft tokens verified,
/// how many were accepted, and how many at each position (position 0: the first draft after the known tokens).
/// </summary>
public sealed record SpecDecodingStats(int NumSpecTokens, long NumDrafts, long NumDraftTokens, long NumAcceptedTokens, long[] NumAcceptedTokensPerPos)
{
    /// <summary>Tokens a verification yields on average: the accepted drafts and the target's own token (vLLM's mean acceptance length).</summary>
    public double MeanAcceptanceLength => NumDrafts == 0 ? 0 : 1 + (double)NumAcceptedTokens / NumDrafts;

    /// <summary>Accepted draft tokens over draft tokens.</summary>
    public double AcceptanceRate => NumDraftTokens == 0 ? 0 : (double)NumAcceptedTokens / NumDraftTokens;

    /// <summary>Each position's acceptance rate: accepted there over verifications.</summary>
    public IEnumerable<double> PerPositionAcceptanceRates => NumAcceptedTokensPerPos.Select(a => NumDrafts == 0 ? 0 : (double)a / NumDrafts);

    /// <summary>The counters since <paramref name="earlier"/> (for a stats line over an interval).</summary>
    public SpecDecodingStats Since(SpecDecodingStats earlier) => new(NumSpecTokens, NumDrafts - earlier.NumDrafts,
        NumDraftTokens - earlier.NumDraftTokens, NumAcceptedTokens - earlier.NumAcceptedTokens,
        NumAcceptedTokensPerPos.Select((a, i) => a - earlier.NumAcceptedTokensPerPos[i]).ToArray());
}
