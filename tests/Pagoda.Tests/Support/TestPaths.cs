namespace Pagoda.Tests.Support;

/// <summary>Locations inside the repository, found by walking up from the test binary.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Fixtures => Path.Combine(RepoRoot, "tests", "fixtures");

    public static string Golden(string name) => Path.Combine(Fixtures, "golden", name);

    /// <summary>A model folder: the embedded default (fortune-chat) or a tiny test model.</summary>
    public static string Model(string name) => name is "fortune-chat" or "fortune-chat-draft"
        ? Path.Combine(RepoRoot, "models", name)
        : Path.Combine(Fixtures, "models", name);

    /// <summary>Git-ignored cache for things fetched at test setup (npm tokenizers).</summary>
    public static string Cache => Path.Combine(RepoRoot, ".cache");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Pagoda.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Pagoda.slnx not found above " + AppContext.BaseDirectory);
    }
}
