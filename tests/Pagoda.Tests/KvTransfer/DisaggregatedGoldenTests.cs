using Pagoda.Tests.Support;

namespace Pagoda.Tests.KvTransfer;

/// <summary>
/// llm-d's flow between two engines over loopback: every golden prompt is prefilled on the producer (max_tokens 1,
/// do_remote_decode), its KV pulled by the consumer, and decoded there: the greedy ids are transformers' (what one
/// instance gives), and afterwards neither side holds a block.
/// </summary>
public class DisaggregatedGoldenTests
{
    [Theory]
    [InlineData("fortune-chat", 16)]
    [InlineData("tiny-llama", 16)]
    [InlineData("tiny-llama", 4)] // many blocks per prompt, the last one partial
    public async Task EveryGoldenPromptPrefilledOnOneEngineDecodesOnTheOther(string model, int blockSize)
    {
        var cases = Golden.Cases(model).Select(c => Golden.Load(model, (string)c[0], (int)c[1])).ToList();
        using var pair = new PdPair(model, blockSize);
        // All at once: pulls land while the consumer decodes the requests whose KV came first.
        var results = await Task.WhenAll(cases.Select(async (c, i) =>
        {
            var remote = await pair.Prefill($"r{i}", c.PromptIds);
            // A prefill whose one token ends the answer (EOS) holds nothing, as in vLLM: the decode then computes the
            // prompt itself, as llm-d's sidecar sends it on without kv_transfer_params.
            if (c.OutputIds[0] is 8192 or 8194)
            {
                Assert.Null(remote);
                return await pair.Decode($"r{i}", c.PromptIds, c.OutputIds.Length, null);
            }
            Assert.NotNull(remote);
            Assert.True(remote.DoRemotePrefill);
            Assert.False(remote.DoRemoteDecode);
            Assert.Equal(c.PromptIds.Length, remote.RemoteNumTokens);
            Assert.Equal((c.PromptIds.Length + blockSize - 1) / blockSize, remote.RemoteBlockIds!.Count);
            return await pair.Decode($"r{i}", c.PromptIds, c.OutputIds.Length, remote);
        }));
        for (int i = 0; i < cases.Count; i++)
        {
            var output = results[i].Outputs.Single();
            Assert.True(cases[i].OutputIds.SequenceEqual(output.TokenIds), $"{cases[i]}: ids differ");
            for (int s = 0; s < cases[i].Steps.Length; s++)
                Assert.True(Math.Abs(cases[i].Steps[s].Logprob - output.Logprobs![s].Logprob) <= 1e-4, $"{cases[i]} step {s}");
        }
        // The producer frees each prefill's blocks once pulled; the consumer's requests are done.
        await PdPair.WaitIdle(pair.Producer);
        await PdPair.WaitIdle(pair.Consumer);
        pair.Dispose();
        PdPair.AssertNoLeakedBlocks(pair.Producer);
        PdPair.AssertNoLeakedBlocks(pair.Consumer);
    }

    /// <summary>The consumer's prefix cache: a second decode of the same prompt pulls only what it lacks, and the first one's pulled blocks were cached.</summary>
    [Fact]
    public async Task PulledBlocksEnterTheConsumersPrefixCache()
    {
        var c = Golden.Load("fortune-chat", "ids", 3); // 130 tokens: 8 full blocks and a partial one
        using var pair = new PdPair("fortune-chat");
        var first = await pair.Decode("a", c.PromptIds, c.OutputIds.Length, await pair.Prefill("a", c.PromptIds));
        var hitsBefore = pair.Consumer.Stats.PrefixCache.HitTokens;
        var second = await pair.Decode("b", c.PromptIds, c.OutputIds.Length, await pair.Prefill("b", c.PromptIds));
        Assert.Equal(c.OutputIds, first.Outputs[0].TokenIds);
        Assert.Equal(c.OutputIds, second.Outputs[0].TokenIds);
        // Every full block of the 129 tokens whose KV the pull provides is a hit the second time.
        Assert.Equal(128, pair.Consumer.Stats.PrefixCache.HitTokens - hitsBefore);
        await PdPair.WaitIdle(pair.Producer);
        await PdPair.WaitIdle(pair.Consumer);
    }
}
