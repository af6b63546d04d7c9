using Microsoft.Extensions.Logging;

namespace Pagoda.Server;

/// <summary>
/// Log lines in vLLM's shape, `INFO 05-12 10:00:00 [category] message`, written to one writer (stderr for
/// the CLI, a buffer in tests). Exceptions follow on the next lines.
/// </summary>
internal sealed class LineLoggerProvider(TextWriter writer) : ILoggerProvider
{
    private readonly Lock _lock = new();

    public ILogger CreateLogger(string categoryName) => new LineLogger(this, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    public void Dispose()
    {
    }

    private sealed class LineLogger(LineLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string level = logLevel switch
            {
                LogLevel.Trace or LogLevel.Debug => "DEBUG",
                LogLevel.Information => "INFO",
                LogLevel.Warning => "WARNING",
                _ => "ERROR",
            };
            string line = $"{level} {DateTime.Now:MM-dd HH:mm:ss} [{category}] {formatter(state, exception)}";
            lock (owner._lock)
            {
                owner.Writer.WriteLine(line);
                if (exception != null)
                    owner.Writer.WriteLine(exception);
                owner.Writer.Flush();
            }
        }
    }

    private TextWriter Writer => writer;
}
