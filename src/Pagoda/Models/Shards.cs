using Pagoda.Backends;
using Pagoda.Distributed;
using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>
/// One tensor-parallel rank's view of a model's weights (Megatron's split): column-parallel layers (q/k/v, gate/up,
/// fc1) keep this rank's output rows, row-parallel ones (o, down, fc2) its input columns, copied, with their bias on
/// rank 0 only (added once before the all-reduce); the embedding and the LM head their vocabulary rows (a tied head is
/// the same shard). A single rank reads every weight
/// whole. <see cref="Local"/> is the config the shard computes with: its heads, KV heads and intermediate size.
/// </summary>
internal sealed class Shards
{
    private readonly WeightStore _weights;

    public Shards(ModelConfig config, WeightStore weights, ICommunicator? comm, int? intermediateSize = null)
    {
        _weights = weights;
        Comm = comm is { Rank.IsParallel: true } ? comm : null;
        Tp = Comm?.Rank ?? TensorParallelRank.Single;
        int hd = config.HeadDim;
        var heads = Tp.Even(config.NumHeads, "num_attention_heads");
        var kvHeads = Tp.KvHeads(config.NumKvHeads);
        DenseFf = Tp.Even(config.IntermediateSize, "intermediate_size");
        Ff = intermediateSize is int experts ? Tp.Even(experts, "intermediate_size") : DenseFf;
        QRows = (heads.First * hd, heads.Count * hd);
        KvRows = (kvHeads.First * hd, kvHeads.Count * hd);
        Heads = heads;
        Vocab = Tp.Vocab(config.VocabSize);
        Local = config with { NumHeads = heads.Count, NumKvHeads = kvHeads.Count, IntermediateSize = DenseFf.Count };
    }

    /// <summary>The group's collectives (null for a single rank).</summary>
    public ICommunicator? Comm { get; }

    /// <summary>This rank.</summary>
    public TensorParallelRank Tp { get; }

    /// <summary>This rank's share of the config: heads, KV heads and intermediate size.</summary>
    public ModelConfig Local { get; }

    /// <summary>This rank's attention heads.</summary>
    public (int First, int Count) Heads { get; }

    /// <summary>This rank's rows of q (heads · headDim), of k and v, of the MLP's intermediate, of the vocabulary.</summary>
    public (int First, int Count) QRows { get; }
    public (int First, int Count) KvRows { get; }
    public (int First, int Count) Ff { get; }

    /// <summary>This rank's rows of a dense MLP's intermediate size (an MoE model's dense layers; <see cref="Ff"/> elsewhere).</summary>
    public (int First, int Count) DenseFf { get; }
    public (int First, int Count) Vocab { get; }

    /// <summary>A weight every rank holds whole (norms, the embedding, routers).</summary>
    public HostWeight Whole(string name, params int[] shape) => _weights.View(name, shape);

    /// <summary>A column-parallel weight [total, cols]: this rank's <paramref name="rows"/>.</summary>
    public HostWeight Rows(string name, int total, int cols, (int First, int Count) rows) =>
        Tp.IsParallel ? _weights.ViewRows(name, [total, cols], rows.First, rows.Count) : _weights.View(name, total, cols);

    /// <summary>A row-parallel weight [rows, total]: this rank's <paramref name="cols"/>, copied.</summary>
    public HostWeight Columns(string name, int rows, int total, (int First, int Count) cols) =>
        Tp.IsParallel ? _weights.CopyColumns(name, [rows, total], cols.First, cols.Count) : _weights.View(name, rows, total);

    /// <summary>
    /// A stacked weight read as runs of <paramref name="run"/> elements: items [first, first + count) of each, copied and
    /// shaped <paramref name="local"/> (gpt-oss's experts cut along their intermediate dimension); whole on one rank.
    /// </summary>
    public HostWeight Runs(string name, int[] shape, int run, int first, int count, int[] local) =>
        Tp.IsParallel ? _weights.CopyRuns(name, shape, run, first, count, local) : _weights.View(name, shape);

    /// <summary>A column-parallel layer's bias [total]: this rank's items.</summary>
    public HostWeight Range(string name, int total, (int First, int Count) items) =>
        Tp.IsParallel ? _weights.ViewRange(name, total, items.First, items.Count) : _weights.View(name, total);

    /// <summary>Whether this rank adds the row-parallel layers' biases (rank 0 does, once).</summary>
    public bool AddsRowBias => Tp.Rank == 0;

    /// <summary>The LM head: this rank's vocabulary rows of <paramref name="name"/> [vocab, hidden].</summary>
    public HostWeight Head(string name, int vocab, int hidden) => Rows(name, vocab, hidden, Vocab);

    /// <summary>The token embedding [vocab, hidden]: whole on one rank, this rank's vocabulary rows under tensor parallelism.</summary>
    public HostWeight Embedding(string name, int vocab, int hidden) => Rows(name, vocab, hidden, Vocab);

    /// <summary>x [n, hidden] ← the embedding rows of <paramref name="ids"/>: each rank looks up its own ids, the sum is exact.</summary>
    public void Embed(IBackend b, Tensor table, ReadOnlySpan<int> ids, Tensor x)
    {
        if (Comm == null)
        {
            b.Embedding(table, ids, x);
            return;
        }
        b.EmbeddingShard(table, ids, Vocab.First, x);
        Comm.AllReduce(x);
    }

    /// <summary>Sums a row-parallel layer's partial outputs over the ranks (nothing on one rank).</summary>
    public void AllReduce(Tensor x) => Comm?.AllReduce(x);
}
