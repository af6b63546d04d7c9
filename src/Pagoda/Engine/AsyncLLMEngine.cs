using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Pagoda.Engine;

/// <summary>
/// The engine behind a server: one dedicated thread owns the <see cref="LLMEngine"/> and runs steps while
/// work exists; callers add requests and read their outputs from per-request channels. Cancelling a
/// caller's token aborts its request and frees its blocks on the next loop turn.
/// </summary>
public sealed class AsyncLLMEngine : IDisposable
{
    private abstract record Command;
    private sealed record AddCommand(string RequestId, PromptInput Prompt, SamplingParams Params, Channel<RequestOutput> Outputs) : Command;
    private sealed record AbortCommand(string RequestId) : Command;

    private readonly LLMEngine _engine;
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Channel<RequestOutput>> _streams = new();
    private readonly Thread _loop;
    private readonly CancellationTokenSource _stop = new();
    private volatile EngineStats _stats;
    private volatile Exception? _fatal;

    /// <summary>Starts the loop over an engine it now owns.</summary>
    public AsyncLLMEngine(LLMEngine engine)
    {
        _engine = engine;
        _stats = engine.Stats;
        _loop = new Thread(Run) { IsBackground = true, Name = "pagoda-engine" };
        _loop.Start();
    }

    /// <summary>The engine (read-only facts like the tokenizer and limits; do not step it).</summary>
    public LLMEngine Engine => _engine;

    /// <summary>Load counters as of the last step.</summary>
    public EngineStats Stats => _stats;

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
        await _commands.Writer.WriteAsync(new AddCommand(requestId, prompt, samplingParams, outputs), cancellationToken);
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
            if (!finished)
                _commands.Writer.TryWrite(new AbortCommand(requestId));
        }
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
                if (!_engine.HasUnfinishedRequests)
                {
                    // Idle: block until a command arrives.
                    if (!_commands.Reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult())
                        return;
                }
                while (_commands.Reader.TryRead(out var command))
                    Apply(command);
                if (!_engine.HasUnfinishedRequests)
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
                _stats = _engine.Stats;
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // A failing step leaves the engine in an unknown state: fail every stream rather than hang them.
            _fatal = e;
            foreach (var s in _streams.Values)
                s.Writer.TryComplete(e);
            _streams.Clear();
            while (_commands.Reader.TryRead(out var pending))
            {
                if (pending is AddCommand add)
                    add.Outputs.Writer.TryComplete(e);
            }
        }
    }

    private void Apply(Command command)
    {
        switch (command)
        {
            case AddCommand add:
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
            case AbortCommand abort:
                _engine.Abort(abort.RequestId);
                if (_streams.Remove(abort.RequestId, out var stream))
                    stream.Writer.TryComplete();
                break;
        }
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
        _engine.Dispose();
        _stop.Dispose();
    }
}
