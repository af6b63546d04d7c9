namespace Pagoda.Server.Tests;

/// <summary>
/// deploy/k8s validated offline on every run (deploy/k8s/validate.sh: Kubernetes' schemas, unknown fields, the
/// InferencePool v1 rules, and the references between the Pagoda pods, the pool and the router's config).
/// </summary>
public class DeployManifestTests
{
    [Fact]
    public void KubernetesManifestsValidateOffline()
    {
        string script = Path.Combine(Paths.Root, "deploy", "k8s", "validate.sh");
        var (code, output) = AgentClientTests.Run("bash", $"\"{script}\"", Paths.Root, TimeSpan.FromMinutes(5));
        Assert.True(code == 0, output);
        Assert.Matches(@"\n[1-9][0-9]* passed, 0 failed\s*$", output);
    }
}
