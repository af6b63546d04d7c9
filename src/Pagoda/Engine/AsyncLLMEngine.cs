using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Pagoda.Engine;

/// <summary>
/// The engine behind a server: one dedicated thread owns the <see cref="LLMEngine"/> and runs steps while
/// work exists; callers add requests and read their outputs from per-request channels. Cancelling a
/// caller's token aborts its request and frees its blocks on the next loop turn.
/// </summary>
public sealed class AsyncLLMEngine : IEngineClient
{
    private abstract record Command;
    private sealed record AddCommand(string RequestId, PromptInput Prompt, SamplingParams Params, Channel<RequestOutput> Outputs) : Command;
    private sealed record AbortCommand(string RequestId) : Command;
    private sealed record EmbedCommand(string RequestId, int[] PromptIds, PoolingType Pooling, TaskCompletionSource<float[]> Result) : Command;
    private sealed record ResetPrefixCacheCommand(TaskCompletionSource<bool> Result) : Command;
    // Sent by the KV connector when a pull or a send ends: the idle loop wakes to collect it.
    private sealed record KvTransferWakeCommand : Command;

    private readonly LLMEngine _engine;
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Channel<RequestOutput>> _streams = new();
    private readonly List<EmbedCommand> _pendingEmbeds = [];
    private readonly Thread _loop;
    private readonly CancellationTokenSource _stop = new();
    private volatile EngineStats _stats;
    private volatile Exception? _fatal;
    private int _queuedAdds;
    private int _unfinished;
    private Task<bool>? _idleWait; // kept across timed idle waits: a second WaitToReadAsync would cancel the first

    /// <summary>Starts the loop over an engine it now owns.</summary>
    public AsyncLLMEngine(LLMEngine engine)
    {
        _engine = engine;
        _stats = engine.Stats;
        var wake = new KvTransferWakeCommand();
        engine.KvConnector?.SetWake(() => _commands.Writer.TryWrite(wake));
        _loop = new Thread(Run) { IsBackground = true, Name = "pagoda-engine" };
        _loop.Start();
    }

    /// <summary>The engine (read-only facts like the tokenizer and limits; do not step it).</summary>
    public LLMEngine Engine => _engine;

    /// <inheritdoc />
    public IReadOnlyList<AsyncLLMEngine> Replicas => [this];

    /// <summary>Load counters as of the last step.</summary>
    public EngineStats Stats => _stats;

    /// <summary>Requests not yet running: queued for the loop, or waiting in the scheduler as of the last step.</summary>
    public int NumWaiting => Volatile.Read(ref _queuedAdds) + _stats.NumWaiting;

    /// <summary>Requests added through <see cref="GenerateAsync"/> whose streams have not ended: counted at once, unlike <see cref="Stats"/>.</summary>
    public int NumUnfinished => Volatile.Read(ref _unfinished);

    /// <summary>Why the loop stopped, if a step failed (the engine then serves nothing more).</summary>
    public Exception? Failure => _fatal;

    /// <summary>
    /// Adds a request and streams its outputs (cumulative, delta or final-only, as its parameters say) until
    /// it finishes. Invalid requests throw <see cref="ArgumentException"/> from the enumeration.
    /// </summary>
    public async IAsyncEnumerable<RequestOutput> GenerateAsync(string requestId, PromptInput prompt, SamplingParams samplingParams,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (_fatal is { } fatal)
            throw new InvalidOperationException("The engine loop failed and stopped.", fatal);
        var outputs = Channel.CreateUnbounded<RequestOutput>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        Interlocked.Increment(ref _queuedAdds);
        if (!_commands.Writer.TryWrite(new AddCommand(requestId, prompt, samplingParams, outputs)))
        {
            Interlocked.Decrement(ref _queuedAdds);
            throw new ObjectDisposedException(nameof(AsyncLLMEngine));
        }
        Interlocked.Increment(ref _unfinished);
        bool finished = false;
        try
        {
            await foreach (var o in outputs.Reader.ReadAllAsync(cancellationToken))
            {
                finished = o.Finished;
                yield return o;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _unfinished);
            if (!finished)
                _commands.Writer.TryWrite(new AbortCommand(requestId));
        }
    }

    /// <summary>
    /// The prompt's pooled, L2-normalized final hidden state (see <see cref="LLMEngine.TryEmbed"/>), computed on
    /// the loop between steps; waits for free blocks when running requests hold the pool. Invalid prompts throw
    /// <see cref="ArgumentException"/>.
    /// </summary>
    public async Task<float[]> EmbedAsync(string requestId, PromptInput prompt, PoolingType pooling, CancellationToken cancellationToken = default)
    {
        if (_fatal is { } fatal)
            throw new InvalidOperationException("The engine loop failed and stopped.", fatal);
        int[] ids = _engine.ProcessPrompt(prompt);
        var result = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _commands.Writer.WriteAsync(new EmbedCommand(requestId, ids, pooling, result), cancellationToken);
        return await result.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Forgets every cached prefix between steps (see <see cref="LLMEngine.ResetPrefixCache"/>); false while
    /// requests hold blocks.
    /// </summary>
    public async Task<bool> ResetPrefixCacheAsync(CancellationToken cancellationToken = default)
    {
        if (_fatal is { } fatal)
            throw new InvalidOperationException("The engine loop failed and stopped.", fatal);
        var result = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _commands.Writer.WriteAsync(new ResetPrefixCacheCommand(result), cancellationToken);
        return await result.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Aborts a request by id.</summary>
    public void Abort(string requestId) => _commands.Writer.TryWrite(new AbortCommand(requestId));

    private void Run()
    {
        var token = _stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                if (!_engine.HasStepWork && _pendingEmbeds.Count == 0)
                {
                    // Idle (or only waiting for remote KVs): block until a command or the KV connector's wake arrives, or
                    // until a held prefill's blocks expire.
                    if (!WaitForCommand(_engine.KvConnector?.UntilNextExpiry, token))
                        return;
                }
                while (_commands.Reader.TryRead(out var command))
                    Apply(command);
                RunPendingEmbeds();
                if (!_engine.HasStepWork)
                    continue;
                foreach (var output in _engine.Step())
                {
                    if (!_streams.TryGetValue(output.RequestId, out var stream))
                        continue;
                    stream.Writer.TryWrite(output);
                    if (output.Finished)
                    {
                        stream.Writer.TryComplete();
                        _streams.Remove(output.RequestId);
                    }
                }
                // A request that failed on its own ends with an error; every other stream goes on.
                foreach (var failure in _engine.TakeFailures())
                {
                    if (_streams.Remove(failure.RequestId, out var failed))
                        failed.Writer.TryComplete(new RequestFailedException(failure.RequestId, failure.Error));
                }
                _stats = _engine.Stats;
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // Step isolates per-request faults itself; what escapes it is a bug in the engine's own bookkeeping,
            // which leaves its state unknown: fail every stream rather than hang them, and /health turns 503.
            _fatal = e;
            foreach (var s in _streams.Values)
                s.Writer.TryComplete(e);
            _streams.Clear();
            while (_commands.Reader.TryRead(out var pending))
            {
                if (pending is AddCommand add)
                    add.Outputs.Writer.TryComplete(e);
                else if (pending is EmbedCommand embed)
                    embed.Result.TrySetException(e);
                else if (pending is ResetPrefixCacheCommand reset)
                    reset.Result.TrySetException(e);
            }
            foreach (var embed in _pendingEmbeds)
                embed.Result.TrySetException(e);
            _pendingEmbeds.Clear();
        }
    }

    // False when the command channel is closed; true when a command came or the timeout passed.
    private bool WaitForCommand(TimeSpan? timeout, CancellationToken token)
    {
        _idleWait ??= _commands.Reader.WaitToReadAsync(token).AsTask();
        // At most an hour at a time: Task.WaitAny takes no more than int.MaxValue milliseconds, and waking early is harmless.
        if (timeout is { } t && Task.WaitAny([_idleWait], TimeSpan.FromMilliseconds(Math.Min(t.TotalMilliseconds + 1, 3_600_000))) < 0)
            return true;
        var done = _idleWait;
        _idleWait = null;
        return done.GetAwaiter().GetResult();
    }

    private void Apply(Command command)
    {
        switch (command)
        {
            case AddCommand add:
                Interlocked.Decrement(ref _queuedAdds);
                try
                {
                    _engine.AddRequest(add.RequestId, add.Prompt, add.Params);
                    _streams[add.RequestId] = add.Outputs;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A bad request (validation, template, tokenizer) fails only its own stream.
                    add.Outputs.Writer.TryComplete(e);
                }
                break;
            case EmbedCommand embed:
                _pendingEmbeds.Add(embed);
                break;
            case ResetPrefixCacheCommand reset:
                reset.Result.TrySetResult(_engine.ResetPrefixCache());
                break;
            case AbortCommand abort:
                _engine.Abort(abort.RequestId);
                if (_streams.Remove(abort.RequestId, out var stream))
                    stream.Writer.TryComplete();
                break;
        }
        _stats = _engine.Stats;
    }

    // In arrival order; one that finds no free blocks waits (with those behind it) for a later turn.
    private void RunPendingEmbeds()
    {
        int done = 0;
        for (; done < _pendingEmbeds.Count; done++)
        {
            var embed = _pendingEmbeds[done];
            if (embed.Result.Task.IsCompleted)
                continue;
            try
            {
                if (_engine.TryEmbed(embed.RequestId, embed.PromptIds, embed.Pooling) is not { } vector)
                    break;
                embed.Result.TrySetResult(vector);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // TryEmbed returns its borrowed blocks whatever happens, so only this embedding fails.
                embed.Result.TrySetException(e);
            }
        }
        _pendingEmbeds.RemoveRange(0, done);
        if (done > 0)
            _stats = _engine.Stats;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stop.Cancel();
        _commands.Writer.TryComplete();
        _loop.Join();
        foreach (var s in _streams.Values)
            s.Writer.TryComplete(new ObjectDisposedException(nameof(AsyncLLMEngine)));
        foreach (var embed in _pendingEmbeds)
            embed.Result.TrySetException(new ObjectDisposedException(nameof(AsyncLLMEngine)));
        while (_commands.Reader.TryRead(out var pending))
        {
            if (pending is ResetPrefixCacheCommand reset)
                reset.Result.TrySetException(new ObjectDisposedException(nameof(AsyncLLMEngine)));
        }
        _engine.Dispose();
        _stop.Dispose();
    }
}
