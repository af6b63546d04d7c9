using System.Runtime.Intrinsics;

namespace Pagoda.Backends.Cpu;

/// <summary>
/// The int8 weight layout the decode GEMV streams best: rows in groups of four, each group stored as
/// [cols / 16][4][16] bytes, so one 16-element step of the 4-row kernel reads one whole 64-byte cache
/// line and a chunk of rows is a single linear stream. Row-major int8 gives the same kernel four
/// interleaved streams a few KiB long, which the hardware prefetcher follows less well (a whole-model
/// replay streamed 23-34 % faster in this layout, docs/BENCHMARKS.md). Int8 weights are made at load time,
/// so the layout is free to choose; a weight whose rows are not a multiple of 4 or whose columns are not
/// a multiple of 16 stays row-major.
/// </summary>
/// <remarks>
/// The kernels keep <see cref="DotKernels"/>' per-element order (one accumulator over k = 0, 16, 32, ...
/// or 0, 8, 16, ... by <see cref="BackendOptions.UseVector512"/>, then the lanes summed), so a row gives the
/// same bits in this layout as row-major, in the GEMV and in the panel GEMM alike: batch invariance holds.
/// </remarks>
internal static unsafe class RowQuads
{
    /// <summary>Rows per group.</summary>
    public const int Rows = 4;

    /// <summary>Elements of one row per 16-byte slice; a step over the group's four rows reads 64 bytes.</summary>
    public const int Slice = 16;

    /// <summary>Whether a [rows, cols] int8 weight is stored in this layout.</summary>
    public static bool Fits(int rows, int cols) => rows % Rows == 0 && cols % Slice == 0 && cols > 0;

    /// <summary>Byte offset of element (row, col) of a [rows, cols] weight in this layout.</summary>
    public static long Offset(int row, int col, int cols) =>
        (long)(row / Rows) * Rows * cols + (col / Slice) * (Rows * Slice) + (row % Rows) * Slice + col % Slice;

    /// <summary>
    /// One input row against the four rows of the group at <paramref name="group"/> (k % 16 == 0):
    /// sums[r] = x · row r, unscaled.
    /// </summary>
    public static void Dot1x4(float* x, byte* group, int k, float* sums, bool wide)
    {
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        if (wide)
        {
            for (int i = 0; i < k; i += Slice)
            {
                byte* line = group + i * Rows;
                var xv = Vector512.Load(x + i);
                b0 = Vector512.FusedMultiplyAdd(xv, I8Weights.Load16(line, 0), b0);
                b1 = Vector512.FusedMultiplyAdd(xv, I8Weights.Load16(line, Slice), b1);
                b2 = Vector512.FusedMultiplyAdd(xv, I8Weights.Load16(line, 2 * Slice), b2);
                b3 = Vector512.FusedMultiplyAdd(xv, I8Weights.Load16(line, 3 * Slice), b3);
            }
            sums[0] = Vector512.Sum(b0);
            sums[1] = Vector512.Sum(b1);
            sums[2] = Vector512.Sum(b2);
            sums[3] = Vector512.Sum(b3);
            return;
        }
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < k; i += 8)
        {
            // Elements i .. i+7 of row r sit at the slice's offset i % 16 within row r's 16 bytes.
            byte* line = group + (i / Slice) * (Rows * Slice) + i % Slice;
            var xv = Vector256.Load(x + i);
            a0 = Vector256.FusedMultiplyAdd(xv, I8Weights.Load8(line, 0), a0);
            a1 = Vector256.FusedMultiplyAdd(xv, I8Weights.Load8(line, Slice), a1);
            a2 = Vector256.FusedMultiplyAdd(xv, I8Weights.Load8(line, 2 * Slice), a2);
            a3 = Vector256.FusedMultiplyAdd(xv, I8Weights.Load8(line, 3 * Slice), a3);
        }
        sums[0] = DotKernels.HSum(a0);
        sums[1] = DotKernels.HSum(a1);
        sums[2] = DotKernels.HSum(a2);
        sums[3] = DotKernels.HSum(a3);
    }

    /// <summary>Widens rows [first, first + count) of a [*, k] weight in this layout into a float32 panel [count, k].</summary>
    public static void WidenRows(byte* w, int first, int count, int k, float* panel)
    {
        for (int r = 0; r < count; r++)
        {
            int row = first + r;
            byte* src = w + Offset(row, 0, k);
            float* dst = panel + (long)r * k;
            // Eight at a time on every machine, as DotKernels.WidenRows does (Vector512 is emulated without AVX-512).
            for (int i = 0; i < k; i += Slice)
            {
                I8Weights.Load8(src + i * Rows, 0).Store(dst + i);
                I8Weights.Load8(src + i * Rows, 8).Store(dst + i + 8);
            }
        }
    }

    /// <summary>Writes one quantized row into its place in a [*, cols] weight of this layout.</summary>
    public static void StoreRow(ReadOnlySpan<sbyte> row, byte* w, int index, int cols)
    {
        byte* dst = w + Offset(index, 0, cols);
        for (int i = 0; i < cols; i += Slice)
            row.Slice(i, Slice).CopyTo(new Span<sbyte>(dst + i * Rows, Slice));
    }
}
