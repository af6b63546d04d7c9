namespace Pagoda.Tests.Support;

/// <summary>
/// One loaded LLM per fixture model for the whole test run; the engine is single-threaded, so callers
/// take the lock while they use it.
/// </summary>
public static class SharedModels
{
    private static readonly Dictionary<string, LLM> Loaded = new();

    public static T Use<T>(string model, Func<LLM, T> action)
    {
        LLM llm;
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(model, out llm!))
                Loaded[model] = llm = new LLM(new EngineArgs { Model = TestPaths.Model(model) });
        }
        lock (llm)
            return action(llm);
    }
}
