using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pagoda.Tests.Support;

/// <summary>A throwaway copy of a fixture model folder that a test may edit; deleted on dispose.</summary>
public sealed class TempModel : IDisposable
{
    public TempModel(string fixtureModel)
    {
        Dir = Path.Combine(Path.GetTempPath(), "pagoda-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
        foreach (string f in Directory.GetFiles(TestPaths.Model(fixtureModel)))
            System.IO.File.Copy(f, Path.Combine(Dir, Path.GetFileName(f)));
    }

    public string Dir { get; }

    public string File(string name) => Path.Combine(Dir, name);

    /// <summary>Rewrites config.json through <paramref name="edit"/>.</summary>
    public void EditConfig(Action<JsonObject> edit, string name = "config.json")
    {
        var obj = JsonNode.Parse(System.IO.File.ReadAllText(File(name)))!.AsObject();
        edit(obj);
        System.IO.File.WriteAllText(File(name), obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
