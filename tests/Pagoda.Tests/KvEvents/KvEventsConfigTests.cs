using Pagoda.Cli;
using Pagoda.KvEvents;

namespace Pagoda.Tests.KvEvents;

/// <summary>--kv-events-config read as vLLM's KVEventsConfig: its fields, its defaults, one-line errors.</summary>
public class KvEventsConfigTests
{
    [Fact]
    public void EveryVllmFieldIsRead()
    {
        var c = KvEventsConfig.Parse("""
            {"enable_kv_cache_events": true, "publisher": "zmq", "endpoint": "tcp://*:5557", "topic": "kv",
             "replay_endpoint": "tcp://*:5558", "buffer_steps": 10000, "hwm": 100000, "max_queue_size": 100000}
            """);
        Assert.Equal(new KvEventsConfig
        {
            EnableKvCacheEvents = true, Publisher = "zmq", Endpoint = "tcp://*:5557", Topic = "kv", ReplayEndpoint = "tcp://*:5558",
            BufferSteps = 10000, Hwm = 100000, MaxQueueSize = 100000,
        }, c);
        Assert.True(c.PublishesOverZmq);
    }

    [Fact]
    public void DefaultsAreVllms()
    {
        var c = KvEventsConfig.Parse("{}");
        Assert.False(c.EnableKvCacheEvents);
        Assert.Equal("null", c.ResolvedPublisher); // vLLM's __post_init__: zmq only when events are on
        Assert.Equal("tcp://*:5557", c.Endpoint);
        Assert.Null(c.ReplayEndpoint);
        Assert.Equal((10_000, 100_000, 100_000, ""), (c.BufferSteps, c.Hwm, c.MaxQueueSize, c.Topic));
        var on = KvEventsConfig.Parse("""{"enable_kv_cache_events": true}""");
        Assert.Equal("zmq", on.ResolvedPublisher);
        Assert.True(on.PublishesOverZmq);
        Assert.False(KvEventsConfig.Parse("""{"enable_kv_cache_events": true, "publisher": "null"}""").PublishesOverZmq);
    }

    [Theory]
    [InlineData("""{"enable_kv_cache_events": true, "bogus": 1}""", "--kv-events-config: unknown field 'bogus' (known: enable_kv_cache_events, publisher, endpoint, replay_endpoint, buffer_steps, hwm, max_queue_size, topic).")]
    [InlineData("""{"publisher": "kafka"}""", "--kv-events-config: publisher 'kafka' is not supported (supported: zmq, null).")]
    [InlineData("""{"enable_kv_cache_events": "yes"}""", "--kv-events-config: enable_kv_cache_events must be true or false, got \"yes\".")]
    [InlineData("""{"hwm": 1.5}""", "--kv-events-config: hwm must be an integer, got 1.5.")]
    [InlineData("""{"buffer_steps": -1}""", "--kv-events-config: buffer_steps, hwm and max_queue_size must not be negative.")]
    [InlineData("""[1]""", "--kv-events-config must be a JSON object, such as '{\"enable_kv_cache_events\": true}'.")]
    [InlineData("""{"enable_kv_cache_events": true, "endpoint": "ipc:///tmp/kv"}""", "--kv-events-config: endpoint 'ipc:///tmp/kv' must be a tcp:// (or inproc://) address.")]
    public void BadConfigsAreOneLineErrors(string json, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => KvEventsConfig.Parse(json));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void NotJsonIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => KvEventsConfig.Parse("{enable"));
        Assert.StartsWith("--kv-events-config is not valid JSON: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>vLLM binds the PUB socket on a wildcard address and connects otherwise (to a router's listener).</summary>
    [Theory]
    [InlineData("tcp://*:5557", true)]
    [InlineData("tcp://[::]:5557", true)]
    [InlineData("inproc://kv", true)]
    [InlineData("tcp://127.0.0.1:5557", false)]
    [InlineData("tcp://router.example:5557", false)]
    public void PubEndpointsBindOnWildcardsAndConnectOtherwise(string endpoint, bool binds) =>
        Assert.Equal(binds, ZmqEventPublisher.Binds(endpoint));

    [Fact]
    public void ServeReportsABadConfigOnOneLine()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = PagodaCli.Run(["serve", "--kv-events-config", """{"enable_kv_cache_events": true, "publisher": "kafka"}"""], output, error);
        Assert.Equal(1, code);
        Assert.Equal("error: --kv-events-config: publisher 'kafka' is not supported (supported: zmq, null).", error.ToString().Trim());
    }
}
