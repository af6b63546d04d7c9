using Pagoda.Cli;
using Pagoda.KvTransfer;

namespace Pagoda.Tests.KvTransfer;

/// <summary>--kv-transfer-config read as vLLM's KVTransferConfig: its fields, its defaults, one-line errors.</summary>
public class KvTransferConfigTests
{
    [Fact]
    public void TheFieldsAreVllms()
    {
        var c = KvTransferConfig.Parse("""
            {"kv_connector": "PagodaConnector", "kv_role": "kv_producer", "engine_id": "p0", "kv_ip": "10.0.0.5", "kv_port": 15000,
             "kv_load_failure_policy": "recompute", "kv_buffer_device": "cpu", "kv_buffer_size": 1e9, "kv_rank": 0, "kv_parallel_size": 2,
             "kv_connector_module_path": null, "enable_permute_local_kv": false,
             "kv_connector_extra_config": {"abort_request_timeout": 2.5, "transfer_timeout": 7}}
            """);
        Assert.Equal(("PagodaConnector", "kv_producer", "p0", "10.0.0.5", 15000), (c.KvConnector, c.KvRole, c.EngineId, c.KvIp, c.KvPort));
        Assert.True(c.IsKvProducer);
        Assert.False(c.IsKvConsumer);
        Assert.True(c.RecomputesFailedLoads);
        Assert.Equal(TimeSpan.FromSeconds(2.5), c.AbortRequestTimeout);
        Assert.Equal(TimeSpan.FromSeconds(7), c.TransferTimeout);
    }

    [Fact]
    public void DefaultsAreVllms()
    {
        var c = KvTransferConfig.Parse("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both"}""");
        Assert.True(c.IsKvProducer && c.IsKvConsumer);
        Assert.Equal(("127.0.0.1", 14579, "fail"), (c.KvIp, c.KvPort, c.KvLoadFailurePolicy));
        Assert.Equal(TimeSpan.FromSeconds(480), c.AbortRequestTimeout); // VLLM_NIXL_ABORT_REQUEST_TIMEOUT
        Assert.True(Guid.TryParse(c.EngineId, out _)); // a new one per instance, as vLLM's __post_init__
        Assert.NotEqual(c.EngineId, KvTransferConfig.Parse("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both"}""").EngineId);
        Assert.True(KvTransferConfig.Parse("""{"kv_connector": "PagodaConnector", "kv_role": "kv_consumer"}""") is { IsKvConsumer: true, IsKvProducer: false });
    }

    [Theory]
    [InlineData("""{"kv_role": "kv_both"}""", "--kv-transfer-config: kv_connector is required (supported: PagodaConnector).")]
    [InlineData("""{"kv_connector": "PagodaConnector"}""", "--kv-transfer-config: kv_role is required (supported: kv_producer, kv_consumer, kv_both).")]
    [InlineData("""{"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}""", "--kv-transfer-config: kv_connector 'LMCacheConnectorV1' is not supported (supported: PagodaConnector).")]
    [InlineData("""{"kv_connector": "NixlConnector", "kv_role": "kv_both"}""", "--kv-transfer-config: kv_connector 'NixlConnector' is not supported (supported: PagodaConnector); Pagoda pulls KV over its own TCP protocol, so every instance of a deployment uses PagodaConnector.")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_prefill"}""", "--kv-transfer-config: kv_role 'kv_prefill' is not supported (supported: kv_producer, kv_consumer, kv_both).")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "kv_port": "x"}""", "--kv-transfer-config: kv_port must be an integer, got \"x\".")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "kv_port": 70000}""", "--kv-transfer-config: kv_port must be between 0 and 65535, got 70000.")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "bogus": 1}""", "--kv-transfer-config: unknown field 'bogus' (known: kv_connector, engine_id, kv_buffer_device, kv_buffer_size, kv_role, kv_rank, kv_parallel_size, kv_ip, kv_port, kv_connector_extra_config, kv_connector_module_path, enable_permute_local_kv, kv_load_failure_policy).")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "kv_load_failure_policy": "retry"}""", "--kv-transfer-config: kv_load_failure_policy 'retry' is not supported (supported: fail, recompute).")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "kv_connector_extra_config": {"abort_request_timeout": 0}}""", "--kv-transfer-config: kv_connector_extra_config.abort_request_timeout must be a positive number of seconds, got 0.")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "kv_connector_extra_config": {"backends": ["UCX"]}}""", "--kv-transfer-config: unknown kv_connector_extra_config field 'backends' (known: abort_request_timeout, transfer_timeout).")]
    [InlineData("""{"kv_connector": "PagodaConnector", "kv_role": "kv_both", "kv_connector_module_path": "my.module"}""", "--kv-transfer-config: kv_connector_module_path is not supported (connectors are built in).")]
    [InlineData("""["PagodaConnector"]""", "--kv-transfer-config must be a JSON object, such as '{\"kv_connector\": \"PagodaConnector\", \"kv_role\": \"kv_both\"}'.")]
    public void BadConfigsAreOneLineErrors(string json, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => KvTransferConfig.Parse(json));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void NotJsonIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => KvTransferConfig.Parse("{kv_role"));
        Assert.StartsWith("--kv-transfer-config is not valid JSON: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ServeReportsABadConfigOnOneLineAndDoesNotStart()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = PagodaCli.Run(["serve", "--kv-transfer-config", """{"kv_connector": "PagodaConnector", "kv_role": "kv_decoder"}"""], output, error);
        Assert.Equal(1, code);
        Assert.Equal("error: --kv-transfer-config: kv_role 'kv_decoder' is not supported (supported: kv_producer, kv_consumer, kv_both).", error.ToString().Trim());
    }

    [Fact]
    public void AnEngineWhoseListenerCannotBindDoesNotStart()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var e = Assert.Throws<ArgumentException>(() => PdPair.Start("tiny-llama", 16, 64, new KvTransferConfig { KvRole = "kv_producer", KvPort = port }));
        Assert.StartsWith($"--kv-transfer-config: cannot listen on 127.0.0.1:{port}: ", e.Message);
    }
}
