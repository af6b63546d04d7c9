using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NetMQ;
using NetMQ.Sockets;
using Pagoda.Tests.KvEvents;

namespace Pagoda.Server.Tests;

/// <summary>
/// Issue 21's acceptance test: three `pagoda serve` replicas as vLLM-type engines behind a stand-in for the llm-d
/// endpoint picker, which reads their vllm:* metrics and render routes without the API key and routes by the longest
/// cached prefix it rebuilds from their KV events (blocks indexed by token content, chained by parent, as llm-d does).
/// The replicas run in a network namespace at an address in 198.18.0.0/15 where `ip netns` works (root), else on
/// loopback; they bind their KV event sockets on a wildcard (as in the llm-d deployment) and the picker connects.
/// </summary>
public class PickerTests
{
    internal const string Key = "picker-key";
    internal const int BlockSize = 16;
    internal static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task PickerRoutesByKvEventsAndFollowsEvictionsAndReplay()
    {
        var clock = Stopwatch.StartNew();
        var replicas = new List<Replica>();
        using var netns = Netns.TryCreate();
        try
        {
            foreach (string name in new[] { "a", "b", "c" })
                replicas.Add(Replica.Start(name, netns));
            foreach (var r in replicas)
                await r.Ready();
            Replica a = replicas[0], b = replicas[1], c = replicas[2];

            // Metrics without the key, under vLLM's names; the pool's geometry from cache_config_info.
            foreach (var r in replicas)
            {
                string m = await r.Open.GetStringAsync("/metrics");
                Assert.Equal(0, Metric(m, "vllm:num_requests_waiting"));
                Assert.Equal(0, Metric(m, "vllm:num_requests_running"));
                Assert.InRange(Metric(m, "vllm:kv_cache_usage_perc"), 0, 1);
                Assert.Matches("vllm:cache_config_info\\{[^}]*block_size=\"16\"", m);
                Assert.Matches("vllm:cache_config_info\\{[^}]*num_gpu_blocks=\"32\"", m);
                Assert.Equal(401, (int)(await r.Open.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = "x" }))).StatusCode);
            }

            // One short request each until a batch arrives live: the subscription is up (what it missed is replayed).
            foreach (var r in replicas)
            {
                for (int i = 0; r.Live == 0; i++)
                {
                    Assert.True(i < 50, $"no live KV events from {r.Name}");
                    await r.Complete($"Warm up replica {r.Name} number {i}: one two three four five six seven eight nine ten.");
                    await PumpUntil(replicas, () => r.Live > 0, TimeSpan.FromMilliseconds(300), throwOnTimeout: false);
                }
            }

            // (1) A long shared prefix sent to B only is attributed to B once B's events arrive.
            string prefix = Words("Shared context", 0, 90);
            int[] prefixIds = await a.Render(prefix);
            int blocks = prefixIds.Length / BlockSize;
            Assert.True(blocks >= 8, $"prefix of {prefixIds.Length} tokens");
            await b.Complete(prefix);
            await PumpUntil(replicas, () => b.Score(prefixIds) == blocks, Wait);
            Assert.Equal(0, a.Score(prefixIds));
            Assert.Equal(0, c.Score(prefixIds));

            // The picker routes a follow-up with that prefix (tokenized by another replica's render route) to B,
            // which serves it from its prefix cache.
            int[] followIds = await c.Render(prefix + " And now a question about it?");
            var best = replicas.MaxBy(r => r.Score(followIds))!;
            Assert.Same(b, best);
            Assert.True(b.Score(followIds) >= blocks - 1);
            double hits = Metric(await b.Open.GetStringAsync("/metrics"), "vllm:prefix_cache_hits_total");
            await best.Complete(prefix + " And now a question about it?");
            double hitsAfter = Metric(await b.Open.GetStringAsync("/metrics"), "vllm:prefix_cache_hits_total");
            Assert.True(hitsAfter - hits >= (blocks - 1) * BlockSize, $"prefix cache hits {hits} -> {hitsAfter}");

            // (2) Other prompts fill B's 32-block pool: its BlockRemoved events take the prefix away from B.
            for (int i = 0; b.Score(prefixIds) > 0; i++)
            {
                Assert.True(i < 10, $"the prefix still scores {b.Score(prefixIds)} blocks on B");
                string filler = Words($"Filler {i}", 1000 + 97 * i, 70);
                int[] fillerIds = await b.Render(filler);
                await b.Complete(filler);
                await PumpUntil(replicas, () => b.Score(fillerIds) == fillerIds.Length / BlockSize, Wait);
            }
            Assert.True(b.RemovedBlocks > 0);
            Assert.Equal(0, a.Score(followIds));
            Assert.Equal(0, c.Score(followIds));

            // (3) A subscriber that connects late sees its first live batch after a gap, recovers the missed batches
            // through the replay socket (contiguous from 0) and rebuilds the same index as the picker's.
            await PumpUntil(replicas, () => false, TimeSpan.FromMilliseconds(200), throwOnTimeout: false);
            long before = b.Expected;
            var late = new Replica.Index();
            using (var sub = new SubscriberSocket())
            {
                sub.Connect($"tcp://{b.Host}:{b.PubPort}");
                sub.Subscribe("kv@");
                NetMQMessage? msg = null;
                for (int i = 0; !sub.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(300), ref msg); i++)
                {
                    Assert.True(i < 30, "no live batch reached the late subscriber");
                    await b.Complete(Words($"Late {i}", 5000 + 31 * i, 30));
                }
                long first = KvEventWire.Seq(msg![1].ToByteArray());
                Assert.True(before > 0 && first >= before, $"the late subscriber's first batch is {first}, {before} were sent before it");
                var seqs = new List<long>();
                foreach (var (seq, payload) in b.ReplayFrom(0).TakeWhile(x => x.Seq < first))
                {
                    seqs.Add(seq);
                    late.Apply(KvEventWire.Decode(payload));
                }
                // Then the live batches, until a quiet spell.
                do
                {
                    seqs.Add(KvEventWire.Seq(msg![1].ToByteArray()));
                    late.Apply(KvEventWire.Decode(msg[2].ToByteArray()));
                }
                while (sub.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(300), ref msg));
                Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
                await PumpUntil(replicas, () => b.Expected >= seqs.Count, Wait);
                Assert.Equal(seqs.Count, b.Expected);
                Assert.True(late.Keys.SetEquals(b.Blocks.Keys), "the replayed index differs from the live one");
            }

            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"picker test: {seconds:F1} s on {(netns is null ? "loopback" : $"namespace {netns.Name} at {netns.Address}")}; " +
                $"prefix {blocks} blocks, B sent {b.Expected} batches ({b.Replayed} replayed on gaps), {b.RemovedBlocks} blocks removed");
        }
        finally
        {
            foreach (var r in replicas)
                r.Dispose();
        }
    }

    // Polls every replica's subscription until the condition holds.
    private static async Task PumpUntil(List<Replica> replicas, Func<bool> condition, TimeSpan timeout, bool throwOnTimeout = true)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            foreach (var r in replicas)
                r.Pump();
            if (condition())
                return;
            if (DateTime.UtcNow > until)
            {
                Assert.False(throwOnTimeout, "the picker's index never reached the expected state");
                return;
            }
            await Task.Delay(10);
        }
    }

    // Distinct deterministic text: words made of the seed's digits spelled out.
    private static string Words(string head, int seed, int count)
    {
        string[] digits = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
        var sb = new StringBuilder(head).Append(':');
        for (int i = 0; i < count; i++)
            sb.Append(' ').Append(digits[(seed + i * 7) % 10]).Append(i % 3 == 0 ? "," : "").Append(i % 11 == 10 ? " and" : "");
        return sb.ToString();
    }

    private static double Metric(string text, string name)
    {
        var m = Regex.Match(text, $"^{Regex.Escape(name)}(\\{{[^}}]*\\}})? (\\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"{name} missing from /metrics");
        return double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
    }

    internal static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}
