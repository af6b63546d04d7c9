using Pagoda.Backends;
using Pagoda.Cuda;
using Pagoda.CudaCheck;

// pagoda-cuda-check cli ARGS... runs the pagoda CLI itself (one binary to carry to a GPU box).
if (args.Length > 0 && args[0] == "cli")
    return Pagoda.Cli.PagodaCli.Run(args[1..], Console.Out, Console.Error);

// pagoda-cuda-check parity | golden | bench MODEL_DIR [--eager] [--dtype D] [--prompts N]   (run from the repo root)
if (!CudaDevice.IsAvailable(out string why))
{
    Console.WriteLine($"SKIP: no CUDA GPU ({why})");
    return 0;
}
string mode = args.Length > 0 ? args[0] : "parity";
string Opt(string name, string dflt) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : dflt;
bool eager = args.Contains("--eager");
bool invariant = args.Contains("--batch-invariant");
int failures = 0;
var log = Console.Out;
switch (mode)
{
    case "parity":
        using (var dev = new CudaDevice())
        {
            log.WriteLine($"parity on {dev.Name} (sm_{dev.Major}{dev.Minor}, driver {dev.DriverVersion})");
            foreach (var dt in new[] { DType.F32, DType.BF16, DType.F16 })
                failures += Parity.Run(dt, dev, log).Count + MergedParity.Run(dt, dev, log).Count + GemmParity.Run(dt, dev, log).Count
                    + MoeParity.Run(dt, dev, log).Count;
        }
        break;
    case "sampling-parity":
        // The sampling kernels alone (parity runs them too, after every other kernel).
        using (var dev = new CudaDevice())
        {
            foreach (var dt in new[] { DType.F32, DType.BF16 })
            {
                using var gpu = new CudaBackend(dt, dev);
                failures += SamplingParity.Run(gpu, new Random(1234 + (int)dt), dt, log).Count;
            }
        }
        break;
    case "seeded":
        failures += SeededCheck.Run(Opt("--model", "models/fortune-chat"), Opt("--dtype", "bfloat16"), log).Count;
        break;
    case "golden":
        foreach (var (entry, dir) in new[] { ("fortune-chat", "models/fortune-chat"), ("tiny-llama", "tests/fixtures/models/tiny-llama"),
                     ("tiny-qwen3", "tests/fixtures/models/tiny-qwen3"), ("tiny-opt", "tests/fixtures/models/tiny-opt") })
            failures += GoldenCheck.Run(".", entry, dir, "float32", log, eager).Count;
        failures += GoldenCheck.Run(".", "fortune-chat-bf16", "models/fortune-chat", "bfloat16", log, eager).Count;
        break;
    case "golden-arch":
        // golden-arch DIR: DIR holds models-arch.json and the fixture folders (carried: the repo's copies are too big to travel).
        foreach (string name in args.Skip(2).DefaultIfEmpty("tiny-mistral,tiny-phi3,tiny-qwen2-yarn,tiny-gemma2,tiny-gemma3,tiny-qwen3-moe,tiny-mixtral,tiny-gpt-oss").SelectMany(a => a.Split(',')))
        {
            foreach (string dt in new[] { "float32", "bfloat16" })
            {
                try
                {
                    failures += GoldenCheck.Run(args[1], name, name, dt, log, eager, "models-arch.json").Count;
                }
                catch (Exception e) when (e is NotSupportedException or ArgumentException)
                {
                    log.WriteLine($"  FAIL golden {name} ({dt}): {e.GetType().Name}: {e.Message}");
                    failures++;
                }
            }
        }
        break;
    case "golden-spec":
        // golden-spec [ARCH_DIR]: with golden-arch's folder, its fixtures too.
        failures += SpecCheck.Goldens(log, args.Length > 1 ? args[1] : null);
        break;
    case "verify-cost":
        SpecCheck.VerifyCost(args[1], Opt("--dtype", "bfloat16"), log);
        break;
    case "spec-bench":
        // spec-bench WORKLOAD [--runs N] [--spec JSON] [--model DIR] [greedy] [fixed] [alone | alone-plain]: bench/SpecDecode's
        // workloads on the GPU, both engines in this process; with alone / alone-plain one engine (with the config, or
        // without it) on the whole GPU, for an A/B of whole processes (two engines in one process favour the first made).
        var specConfig = Pagoda.SpecDecode.SpeculativeConfig.Parse(Opt("--spec", Pagoda.Bench.SpecDecode.SpecDecodeBench.DefaultConfig));
        if (args.Contains("fixed"))
            specConfig = specConfig with { AdaptiveLengths = false };
        if (args.Contains("alone") || args.Contains("alone-plain"))
        {
            Pagoda.Bench.SpecDecode.SpecDecodeBench.RunAlone(
                new Pagoda.EngineArgs
                {
                    Model = Path.GetFullPath(Opt("--model", "models/fortune-chat")), Device = "cuda", BackendProviders = [CudaProvider.Instance], DType = Opt("--dtype", "auto"),
                    SpeculativeConfig = args.Contains("alone") ? specConfig : null,
                },
                args[1], int.Parse(Opt("--runs", "3")), args.Contains("greedy"), log);
            break;
        }
        Pagoda.Bench.SpecDecode.SpecDecodeBench.Run(
            new Pagoda.EngineArgs
            {
                Model = Path.GetFullPath(Opt("--model", "models/fortune-chat")), Device = "cuda", BackendProviders = [CudaProvider.Instance], DType = Opt("--dtype", "auto"),
                GpuMemoryUtilization = 0.4,   // two engines (with and without drafts) share the GPU
            },
            args[1], int.Parse(Opt("--runs", "3")), specConfig, args.Contains("greedy"), log,
            llm => $"{((CudaBackend)llm.Engine.Backend).GraphCount} graphs");
        break;
    case "bench":
        Bench.Run(args[1], Opt("--dtype", "bfloat16"), eager, invariant, int.Parse(Opt("--prompts", "256")), log, args.Contains("--quick"));
        break;
    case "structured":
        StructuredBench.Run(args[1], Opt("--dtype", "bfloat16"), int.Parse(Opt("--concurrency", "32")),
            double.Parse(Opt("--temperature", "1"), System.Globalization.CultureInfo.InvariantCulture), log);
        break;
    case "sampling-cost":
        using (var dev = new CudaDevice())
            SamplingCost.Run(dev, args.Contains("--ncu"), log);
        break;
    case "profile":
        Profile.Run(args[1], Opt("--dtype", "bfloat16"), int.Parse(Opt("--batch", "256")), int.Parse(Opt("--context", "512")), args.Contains("--ncu"), invariant, log,
            args.Contains("--sampled"), int.Parse(Opt("--prefill-prompts", "1")), int.Parse(Opt("--prefill-len", "1024")));
        break;
    default:
        Console.Error.WriteLine("usage: pagoda-cuda-check parity | golden [--eager] | bench MODEL_DIR [--eager] [--batch-invariant] [--dtype D] [--prompts N] [--quick]");
        return 2;
}
log.WriteLine(failures == 0 ? $"{mode}: OK" : $"{mode}: {failures} FAILED");
return failures == 0 ? 0 : 1;
