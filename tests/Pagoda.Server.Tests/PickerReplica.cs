using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NetMQ;
using NetMQ.Sockets;
using Pagoda.Tests.KvEvents;
using static Pagoda.Server.Tests.PickerTests;

namespace Pagoda.Server.Tests;

/// <summary>
/// A network namespace for the replicas, reached over a veth pair with addresses in 198.18.0.0/15 (the
/// benchmarking range), where `ip netns` works (root); else null and the replicas listen on loopback.
/// </summary>
internal sealed class Netns : IDisposable
{
    public required string Name { get; init; }
    public required string Address { get; init; }
    private string _veth = "";

    public static Netns? TryCreate()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
            return null;
        int id = Environment.ProcessId % 32768;
        // A /30 of its own per test process: 198.18.0.0/15 holds 32768 of them.
        int hostIp = (198 << 24) | (18 << 16) | (id * 4 + 1);
        string Ip(int v) => $"{(v >> 24) & 255}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}";
        var ns = new Netns { Name = $"pagoda-picker-{id}", Address = Ip(hostIp + 1), _veth = $"pgp{id}" };
        bool ok = Ip2("netns", "add", ns.Name)
            && Ip2("link", "add", ns._veth + "h", "type", "veth", "peer", "name", ns._veth + "n")
            && Ip2("link", "set", ns._veth + "n", "netns", ns.Name)
            && Ip2("addr", "add", Ip(hostIp) + "/30", "dev", ns._veth + "h")
            && Ip2("link", "set", ns._veth + "h", "up")
            && Ip2("netns", "exec", ns.Name, "ip", "addr", "add", ns.Address + "/30", "dev", ns._veth + "n")
            && Ip2("netns", "exec", ns.Name, "ip", "link", "set", ns._veth + "n", "up")
            && Ip2("netns", "exec", ns.Name, "ip", "link", "set", "lo", "up");
        if (ok)
            return ns;
        ns.Dispose();
        return null;
    }

    private static bool Ip2(params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string a in args)
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit(5000);
            return p.HasExited && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no `ip` here
        }
    }

    public void Dispose()
    {
        Ip2("link", "del", _veth + "h"); // takes its peer in the namespace with it
        Ip2("netns", "del", Name);
    }
}

/// <summary>One `pagoda serve` process and the picker's view of it: an HTTP client with and without the key,
/// the SUB socket on its KV events and the block index rebuilt from them.</summary>
internal sealed class Replica : IDisposable
{
    public required string Name { get; init; }
    public required Process Process { get; init; }
    public required int PubPort { get; init; }
    public required int ReplayPort { get; init; }
    public required string Host { get; init; }
    public readonly StringBuilder Log = new();
    public readonly TaskCompletionSource<string> Address = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public HttpClient Open = null!, Keyed = null!;
    private SubscriberSocket? _sub;
    private DealerSocket? _replay;
    public readonly Index Blocks = new();
    public long Expected, Live, Replayed;
    public int RemovedBlocks => Blocks.Removed;

    public static Replica Start(string name, Netns? netns)
    {
        int pub = KvEventWire.FreePort(), replay = KvEventWire.FreePort();
        string kv = new JsonObject
        {
            ["enable_kv_cache_events"] = true, ["publisher"] = "zmq", ["endpoint"] = $"tcp://*:{pub}",
            ["replay_endpoint"] = $"tcp://*:{replay}", ["topic"] = $"kv@pod-{name}@fortune",
        }.ToJsonString();
        var psi = new ProcessStartInfo(netns is null ? "dotnet" : "ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in netns is null ? [] : new[] { "netns", "exec", netns.Name, "dotnet" })
            psi.ArgumentList.Add(arg);
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "Pagoda.Cli.dll"), "serve", "--host", netns?.Address ?? "127.0.0.1", "--port", "0",
            "--served-model-name", "fortune", "--api-key", Key, "--metrics-prefix", "vllm", "--block-size", "16",
            "--num-kv-blocks", "32", "--max-model-len", "384", "--generation-config", "vllm", "--kv-events-config", kv })
            psi.ArgumentList.Add(arg);
        var r = new Replica { Name = name, Process = Process.Start(psi)!, PubPort = pub, ReplayPort = replay, Host = netns?.Address ?? "127.0.0.1" };
        r.Process.ErrorDataReceived += (_, e) =>
        {
            lock (r.Log)
                r.Log.AppendLine(e.Data);
            if (e.Data is { } line && Regex.Match(line, @"running on (http://\S+)") is { Success: true } m)
                r.Address.TrySetResult(m.Groups[1].Value);
        };
        r.Process.BeginErrorReadLine();
        r.Process.BeginOutputReadLine();
        return r;
    }

    public async Task Ready()
    {
        string url;
        try
        {
            url = await Address.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            lock (Log)
                throw new TimeoutException($"replica {Name} did not start: {Log}");
        }
        Open = new HttpClient { BaseAddress = new Uri(url), Timeout = Wait };
        Keyed = new HttpClient { BaseAddress = new Uri(url), Timeout = Wait };
        Keyed.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        for (int polls = 0; (await Open.GetAsync("/health")).StatusCode != System.Net.HttpStatusCode.OK; polls++)
        {
            Assert.True(polls < 1500, $"/health of {Name} never answered 200");
            await Task.Delay(10);
        }
        _sub = new SubscriberSocket($">tcp://{Host}:{PubPort}");
        _sub.Subscribe($"kv@pod-{Name}@");
        _replay = new DealerSocket($">tcp://{Host}:{ReplayPort}");
    }

    /// <summary>The prompt's token ids from the render route, asked without the key.</summary>
    public async Task<int[]> Render(string prompt)
    {
        using var response = await Open.PostAsync("/v1/completions/render", Json(new JsonObject { ["model"] = "fortune", ["prompt"] = prompt }));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)![0]!["token_ids"]!.AsArray().Select(t => t!.GetValue<int>()).ToArray();
    }

    public async Task Complete(string prompt)
    {
        var body = new JsonObject { ["model"] = "fortune", ["prompt"] = prompt, ["max_tokens"] = 2, ["temperature"] = 0 };
        using var response = await Keyed.PostAsync("/v1/completions", Json(body));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Cached full blocks of the prompt from its start, as the picker's index knows them.</summary>
    public int Score(int[] ids) => Blocks.Score(ids);

    /// <summary>Applies the live batches; a gap in the sequence numbers is filled from the replay socket first.</summary>
    public void Pump()
    {
        NetMQMessage? msg = null;
        while (_sub!.TryReceiveMultipartMessage(TimeSpan.Zero, ref msg))
        {
            Assert.Equal(3, msg.FrameCount);
            long seq = KvEventWire.Seq(msg[1].ToByteArray());
            Live++;
            if (seq > Expected)
            {
                foreach (var (s, payload) in ReplayFrom(Expected).Where(x => x.Seq >= Expected && x.Seq < seq))
                {
                    Assert.Equal(Expected, s);
                    Blocks.Apply(KvEventWire.Decode(payload));
                    Expected = s + 1;
                    Replayed++;
                }
            }
            Assert.Equal(Expected, seq);
            Blocks.Apply(KvEventWire.Decode(msg[2].ToByteArray()));
            Expected = seq + 1;
        }
    }

    public List<(long Seq, byte[] Payload)> ReplayFrom(long start)
    {
        _replay!.SendMoreFrameEmpty().SendFrame(KvEventWire.SeqBytes(start));
        var got = new List<(long, byte[])>();
        while (true)
        {
            NetMQMessage? msg = null;
            Assert.True(_replay!.TryReceiveMultipartMessage(Wait, ref msg), "no replay answer");
            long seq = KvEventWire.Seq(msg![1].ToByteArray());
            if (seq == -1)
                return got;
            got.Add((seq, msg[2].ToByteArray()));
        }
    }

    public void Dispose()
    {
        _sub?.Dispose();
        _replay?.Dispose();
        Open?.Dispose();
        Keyed?.Dispose();
        if (!Process.HasExited)
            Process.Kill(entireProcessTree: true);
        Process.Dispose();
    }

    /// <summary>llm-d's view of one pod: blocks keyed by their token content chained through the parent's key,
    /// with the engine's hashes kept only to resolve parents and removals.</summary>
    public sealed class Index
    {
        private readonly Dictionary<ulong, string> _byHash = [];
        public readonly HashSet<string> Keys = [];
        public int Removed;

        private static string Key(string parent, IEnumerable<long> tokens) => parent + "/" + string.Join(',', tokens);

        public void Apply(KvEventWire.Batch batch)
        {
            foreach (var e in batch.Events)
            {
                switch ((string)e[0]!)
                {
                    case "BlockStored":
                        var s = KvEventWire.AsStored(e);
                        Assert.Equal(BlockSize, s.BlockSize);
                        string parent = s.Parent is { } p ? _byHash[p] : "";
                        for (int i = 0; i < s.Hashes.Count; i++)
                        {
                            parent = Key(parent, s.Tokens.Skip(i * BlockSize).Take(BlockSize));
                            _byHash[s.Hashes[i]] = parent;
                            Keys.Add(parent);
                        }
                        break;
                    case "BlockRemoved":
                        foreach (ulong h in KvEventWire.AsRemoved(e))
                        {
                            Assert.True(_byHash.Remove(h, out string? key), "a removed block was never stored");
                            Keys.Remove(key!);
                            Removed++;
                        }
                        break;
                    case "AllBlocksCleared":
                        _byHash.Clear();
                        Keys.Clear();
                        break;
                }
            }
        }

        public int Score(int[] ids)
        {
            string key = "";
            int n = 0;
            for (; (n + 1) * BlockSize <= ids.Length; n++)
            {
                key = Key(key, ids.Skip(n * BlockSize).Take(BlockSize).Select(t => (long)t));
                if (!Keys.Contains(key))
                    break;
            }
            return n;
        }
    }
}
