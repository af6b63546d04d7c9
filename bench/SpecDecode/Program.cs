using System.Globalization;
using Pagoda;
using Pagoda.Bench.SpecDecode;
using Pagoda.SpecDecode;

// Speculative decoding on the embedded model on the CPU (SpecDecodeBench says what each workload is).
// Usage: dotnet run -c Release --project bench/SpecDecode -- [workload] [runs] [speculative-config JSON] [greedy] [fixed]
//        [alone | alone-plain]: one engine in the process (with the config, or without it), for an A/B of whole processes.
string workload = args.Length > 0 ? args[0] : "repeat";
int runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
var spec = SpeculativeConfig.Parse(args.Length > 2 && args[2].StartsWith('{') ? args[2] : SpecDecodeBench.DefaultConfig);
if (args.Contains("fixed"))
    spec = spec with { AdaptiveLengths = false };
string model = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "models", "fortune-chat"));
if (args.Contains("alone") || args.Contains("alone-plain"))
    SpecDecodeBench.RunAlone(new EngineArgs { Model = model, SpeculativeConfig = args.Contains("alone") ? spec : null }, workload, runs, args.Contains("greedy"), Console.Out);
else
    SpecDecodeBench.Run(new EngineArgs { Model = model }, workload, runs, spec, args.Contains("greedy"), Console.Out);
