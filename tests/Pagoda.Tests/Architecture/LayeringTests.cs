namespace Pagoda.Tests.Architecture;

/// <summary>
/// The library's layer order (docs/ARCHITECTURE.md, "Layers"): each folder of src/Pagoda uses only its own
/// layer and the layers below it, so the engine reads one way, from the kernels up to the API.
/// </summary>
public class LayeringTests
{
    /// <summary>
    /// Bottom to top; a layer is a set of namespaces (a folder with its subfolders). The root namespace holds
    /// the public API: its records are the bottom layer, while <see cref="RootTypesInEngineLayer"/> (the entry
    /// points, which build an engine) belong to the Engine layer.
    /// </summary>
    public static readonly string[][] Layers =
    [
        ["Pagoda"],
        ["Pagoda.Backends"],
        ["Pagoda.Distributed"],
        ["Pagoda.Loading"],
        ["Pagoda.Tokenization"],
        ["Pagoda.StructuredOutput"],
        ["Pagoda.Models"],
        ["Pagoda.Requests"],
        ["Pagoda.KvCache"],
        ["Pagoda.KvEvents"],
        ["Pagoda.KvTransfer"],
        ["Pagoda.Scheduling"],
        ["Pagoda.Sampling"],
        ["Pagoda.Execution"],
        ["Pagoda.SpecDecode"],
        ["Pagoda.Engine"],
        ["Pagoda.OpenAi", "Pagoda.AI"],
    ];

    /// <summary>Root-namespace types that sit in the Engine layer: the offline entry point and the engine's options.</summary>
    public static readonly string[] RootTypesInEngineLayer = ["Pagoda.LLM", "Pagoda.GenerateProgress", "Pagoda.EngineArgs"];

    /// <summary>Namespaces that stay pure bookkeeping over ids: no tensors, no backends.</summary>
    public static readonly string[] Bookkeeping = ["Pagoda.Requests", "Pagoda.KvCache", "Pagoda.Scheduling"];

    /// <summary>Assemblies the engine library must never reference (web host, console UI, native GPU code).</summary>
    public static readonly string[] ForbiddenAssemblies =
        ["Microsoft.AspNetCore", "System.CommandLine", "Spectre.Console", "Pagoda.Cuda", "Pagoda.Server", "Pagoda.Cli"];

    private static string LibraryPath => typeof(LLM).Assembly.Location;

    [Fact]
    public void EveryTypeUsesOnlyItsOwnLayerAndTheLayersBelow()
    {
        var violations = LayerViolations(TypeReferences.CrossNamespaceUses(LibraryPath));
        Assert.True(violations.Count == 0, "Uses of a higher layer:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void EveryNamespaceOfTheLibraryHasALayer()
    {
        var unplaced = typeof(LLM).Assembly.GetTypes().Select(t => t.Namespace).OfType<string>()
            .Where(ns => ns.StartsWith("Pagoda", StringComparison.Ordinal) && LayerOf(ns) < 0).Distinct().ToList();
        Assert.True(unplaced.Count == 0, "Namespaces with no layer: " + string.Join(", ", unplaced));
    }

    [Fact]
    public void BookkeepingNeverTouchesTensorsOrBackends()
    {
        var offending = TypeReferences.CrossNamespaceUses(LibraryPath)
            .Where(u => Bookkeeping.Any(b => InNamespace(u.FromNamespace, b)) && InNamespace(u.ToNamespace, "Pagoda.Backends"))
            .Select(Describe).Distinct().ToList();
        Assert.True(offending.Count == 0, "Bookkeeping using tensors or backends:\n" + string.Join("\n", offending));
    }

    [Fact]
    public void TheLibraryReferencesNoHostUiOrGpuAssembly()
    {
        var bad = ForbiddenReferences(TypeReferences.AssemblyReferences(LibraryPath));
        Assert.True(bad.Count == 0, "src/Pagoda references " + string.Join(", ", bad));
    }

    /// <summary>The check itself bites: a use that runs upward, planted in a list of real uses, is reported.</summary>
    [Fact]
    public void APlantedUpwardUseIsReported()
    {
        var planted = new TypeUse("Pagoda.KvCache.BlockPool", "Pagoda.KvCache", "Pagoda.Engine.LLMEngine", "Pagoda.Engine", "Evict");
        var fromRoot = new TypeUse("Pagoda.SamplingParams", "Pagoda", "Pagoda.Loading.GenerationConfig", "Pagoda.Loading", "Defaults");
        var allowed = new TypeUse("Pagoda.LLM", "Pagoda", "Pagoda.Engine.LLMEngine", "Pagoda.Engine", "Generate");
        var found = LayerViolations([planted, fromRoot, allowed]);
        Assert.Equal(2, found.Count);
        Assert.Contains(found, v => v.Contains("BlockPool") && v.Contains("LLMEngine"));
        Assert.Contains(found, v => v.Contains("SamplingParams") && v.Contains("GenerationConfig"));
        Assert.Equal(["Microsoft.AspNetCore.Http", "Pagoda.Cuda"], ForbiddenReferences(["System.Runtime", "Microsoft.AspNetCore.Http", "Pagoda.Cuda"]));
    }

    private static List<string> LayerViolations(IEnumerable<TypeUse> uses) =>
        uses.Where(u => LayerOf(u.ToNamespace, u.ToType) > LayerOf(u.FromNamespace, u.FromType)).Select(Describe).Distinct().ToList();

    private static List<string> ForbiddenReferences(IEnumerable<string> references) =>
        references.Where(r => ForbiddenAssemblies.Any(f => r == f || r.StartsWith(f + ".", StringComparison.Ordinal))).ToList();

    private static string Describe(TypeUse u) => $"{u.FromType} ({u.Where}) uses {u.ToType}";

    private static int LayerOf(string ns, string? type = null)
    {
        if (ns == "Pagoda" && type != null && RootTypesInEngineLayer.Contains(type))
            ns = "Pagoda.Engine";
        for (int i = Layers.Length - 1; i >= 0; i--)
        {
            if (Layers[i].Any(l => l == "Pagoda" ? ns == "Pagoda" : InNamespace(ns, l)))
                return i;
        }
        return -1;
    }

    private static bool InNamespace(string ns, string root) => ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal);
}
