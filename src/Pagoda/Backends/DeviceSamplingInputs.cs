namespace Pagoda.Backends;

/// <summary>Writes the allowed-token bits of every row ([rows · words], bit i of word w: token 32w + i) into <paramref name="bits"/>.</summary>
public delegate void MaskFiller(Span<int> bits);

/// <summary>
/// What the device does to each sampled logits row of a step before it is reduced (ForwardBatch.Sampling), in
/// this order: the allowed-token mask, the sparse edits (bans as -inf, logit bias), the penalties; then the row's
/// <see cref="Candidates"/> best processed logits, its mass at its temperature, a draw over the whole row where asked,
/// and, with <see cref="Logprobs"/>, raw (unprocessed) log-softmax facts. Each output row holds, in floats:
/// <list type="bullet">
/// <item>[0, K) the best processed values, best first (ties by lower id); [K, 2K) their ids</item>
/// <item>with <see cref="Processed"/>: [2K] the id drawn over the whole row, or the given token (-1 for neither), [2K+1] a
/// drawing row's mass Σ exp((x - max) · (1 / T)) (a <see cref="NucleusFlag"/> row's: over the tokens its min-p and top-p
/// keep; 0 for rows that do not draw)</item>
/// <item>with <see cref="Logprobs"/>: [2K+2] the raw logsumexp; [2K+3, 3K+3) each candidate's raw logit;
/// [3K+3, 4K+3) its rank in the raw row (1 + the number of larger raw logits); [4K+3] and [4K+4] the drawn id's raw
/// logit and rank; [4K+5, 4K+5+N) the N best raw logits and [4K+5+N, 4K+5+2N) their ids (N = <see cref="TopLogprobs"/>)</item>
/// </list>
/// </summary>
public sealed record DeviceSamplingInputs(int Rows, int Candidates)
{
    /// <summary>How many raw top logprobs a row with logprobs gets (OpenAI allows up to 20).</summary>
    public const int TopLogprobs = 20;

    /// <summary>Per-row parameters as ints: <see cref="ParamWidth"/> per row.</summary>
    public const int ParamWidth = 10;

    /// <summary>Whether the rows are processed and described (false: only the candidates of the raw rows).</summary>
    public bool Processed { get; init; }

    /// <summary>Whether the raw logprob facts are wanted.</summary>
    public bool Logprobs { get; init; }

    /// <summary>
    /// Whether some row may draw over its whole row (<see cref="DrawFlag"/>): the device then keeps the processed rows
    /// and runs the draw (the planner sets it from the rows).
    /// </summary>
    public bool Draws { get; init; }

    /// <summary>Whether some drawing row may have a top-p cut (<see cref="NucleusFlag"/> with top-p below 1); as <see cref="Draws"/>.</summary>
    public bool Cuts { get; init; }

    /// <summary>
    /// [Rows · ParamWidth]: 1 / temperature (float bits; scales only the mass and the draw), the uniform draw (double bits,
    /// low then high word), repetition, frequency and presence penalties (float bits), flags (<see cref="DrawFlag"/>,
    /// <see cref="GivenFlag"/>, <see cref="NucleusFlag"/>), the given token, and top-p and min-p (float bits).
    /// </summary>
    public int[] Params { get; init; } = [];

    /// <summary>[Rows + 1] prefix sums of each row's sparse edits.</summary>
    public int[] EditOffsets { get; init; } = [];

    /// <summary>Pairs (token, float bits of the addition): -inf bans, else the logit bias. One per token and row.</summary>
    public int[] Edits { get; init; } = [];

    /// <summary>[Rows + 1] prefix sums of each row's penalty entries.</summary>
    public int[] PenaltyOffsets { get; init; } = [];

    /// <summary>Pairs (token, output count) for every distinct token of the prompt and output. One per token and row.</summary>
    public ReadOnlyMemory<int> Penalties { get; init; } = ReadOnlyMemory<int>.Empty;

    /// <summary>
    /// Fills the rows' allowed-token bits, or null for no mask; the device calls it when it stages the inputs, after the
    /// forward was launched (<see cref="DeviceSamplingPlan"/>), so the host's grammar work overlaps the device's. It must not throw.
    /// </summary>
    public MaskFiller? Masks { get; init; }

    /// <summary>Words per row of <see cref="Masks"/>.</summary>
    public int MaskWords { get; init; }

    /// <summary>Flag bit of a row that draws over its whole row.</summary>
    public const int DrawFlag = 1;

    /// <summary>Flag bit of a row whose token is given (a prompt token to describe): it stands where the draw would.</summary>
    public const int GivenFlag = 2;

    /// <summary>Flag bit of a drawing row whose min-p and top-p cut the row first (Pagoda.Sampling.Nucleus).</summary>
    public const int NucleusFlag = 4;

    /// <summary>Floats per output row.</summary>
    public int RowWidth => !Processed ? 2 * Candidates : Logprobs ? 4 * Candidates + 5 + 2 * TopLogprobs : 2 * Candidates + 2;

    /// <summary>Only the best <paramref name="k"/> candidates of each raw row.</summary>
    public static DeviceSamplingInputs TopK(int rows, int k) => new(rows, k);

    /// <summary>The same inputs over <paramref name="size"/> rows: the extra rows are plain (no edits, no draw, all allowed).</summary>
    public DeviceSamplingInputs Pad(int size)
    {
        if (size == Rows || !Processed)
            return this with { Rows = size };
        var p = new int[size * ParamWidth];
        Params.CopyTo(p, 0);
        for (int r = Rows; r < size; r++)
        {
            p[r * ParamWidth] = BitConverter.SingleToInt32Bits(1f);
            p[r * ParamWidth + 3] = BitConverter.SingleToInt32Bits(1f);
        }
        int[] Extend(int[] offsets)
        {
            var o = new int[size + 1];
            offsets.CopyTo(o, 0);
            o.AsSpan(Rows + 1).Fill(offsets[Rows]);
            return o;
        }
        MaskFiller? masks = null;
        if (Masks is { } inner)
        {
            int filled = Rows * MaskWords;
            masks = bits =>
            {
                inner(bits[..filled]);
                bits[filled..].Fill(-1);
            };
        }
        return this with { Rows = size, Params = p, EditOffsets = Extend(EditOffsets), PenaltyOffsets = Extend(PenaltyOffsets), Masks = masks };
    }

    /// <summary>
    /// The same inputs over <paramref name="size"/> rows, row r moved to <paramref name="rowAt"/>[r] (ascending), the
    /// rows between them plain (all tokens allowed).
    /// </summary>
    public DeviceSamplingInputs Spread(int size, int[] rowAt)
    {
        if (rowAt.Length != Rows || (Rows > 0 && rowAt[^1] >= size))
            throw new ArgumentException($"{rowAt.Length} row positions for {Rows} rows within {size}", nameof(rowAt));
        if (!Processed)
            return this with { Rows = size };
        var spread = Empty(size);
        var p = (int[])spread.Params.Clone();
        var (edits, penalties) = (new int[size + 1], new int[size + 1]);
        for (int r = 0, to = 0; to < size; to++)
        {
            // Rows before `to` that came from this one's left: offsets stay at the last real row's end.
            bool real = r < Rows && rowAt[r] == to;
            if (real)
            {
                Params.AsSpan(r * ParamWidth, ParamWidth).CopyTo(p.AsSpan(to * ParamWidth));
                r++;
            }
            edits[to + 1] = EditOffsets[r];
            penalties[to + 1] = PenaltyOffsets[r];
        }
        return this with { Rows = size, Params = p, EditOffsets = edits, PenaltyOffsets = penalties, Masks = SpreadMasks(size, rowAt) };
    }

    // The masks' rows moved as Spread moves the rows; the rows between them allow every token.
    private MaskFiller? SpreadMasks(int size, int[] rowAt)
    {
        if (Masks is not { } inner)
            return null;
        var (rows, words) = (Rows, MaskWords);
        return bits =>
        {
            var own = new int[rows * words];
            inner(own);
            bits[..(size * words)].Fill(-1);
            for (int r = 0; r < rows; r++)
                own.AsSpan(r * words, words).CopyTo(bits[(rowAt[r] * words)..]);
        };
    }

    /// <summary>Plain inputs over <paramref name="rows"/> rows, of this kind (candidates, draws, cuts, logprobs, masks).</summary>
    public DeviceSamplingInputs Empty(int rows) =>
        (this with { Rows = 0, Params = [], EditOffsets = [0], Edits = [], PenaltyOffsets = [0], Penalties = ReadOnlyMemory<int>.Empty, Masks = Masks == null ? null : _ => { } }).Pad(rows);
}
