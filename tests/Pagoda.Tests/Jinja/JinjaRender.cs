using System.Text.Json.Nodes;
using Pagoda.Tokenization.Jinja;

namespace Pagoda.Tests.Jinja;

/// <summary>Renders a template string with variables given as a JSON object.</summary>
internal static class JinjaRender
{
    public static string R(string template, string? json = null, JinjaOptions? options = null)
    {
        var vars = new Dictionary<string, object?>();
        if (json != null)
            foreach (var (k, v) in JsonNode.Parse(json)!.AsObject()) vars[k] = v;
        return JinjaTemplate.Parse(template, options ?? JinjaOptions.ChatTemplate).Render(vars);
    }
}
