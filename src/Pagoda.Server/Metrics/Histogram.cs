using System.Globalization;
using System.Text;

namespace Pagoda.Server.Metrics;

/// <summary>A Prometheus histogram: cumulative buckets, sum and count, safe to observe from many threads.</summary>
internal sealed class Histogram(double[] bounds)
{
    private readonly long[] _counts = new long[bounds.Length + 1];
    private readonly Lock _lock = new();
    private double _sum;

    public void Observe(double value)
    {
        int i = 0;
        while (i < bounds.Length && value > bounds[i])
            i++;
        lock (_lock)
        {
            _counts[i]++;
            _sum += value;
        }
    }

    public long Count
    {
        get
        {
            lock (_lock)
                return _counts.Sum();
        }
    }

    /// <summary>Writes the `_bucket`, `_sum` and `_count` samples with <paramref name="labels"/> (already formatted).</summary>
    public void WriteTo(StringBuilder sb, string name, string labels)
    {
        long[] counts;
        double sum;
        lock (_lock)
        {
            counts = (long[])_counts.Clone();
            sum = _sum;
        }
        long cumulative = 0;
        for (int i = 0; i <= bounds.Length; i++)
        {
            cumulative += counts[i];
            string le = i < bounds.Length ? PrometheusText.Number(bounds[i]) : "+Inf";
            sb.Append(name).Append("_bucket{le=\"").Append(le).Append("\",").Append(labels).Append("} ")
                .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        sb.Append(name).Append("_sum{").Append(labels).Append("} ").Append(PrometheusText.Number(sum)).Append('\n');
        sb.Append(name).Append("_count{").Append(labels).Append("} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }
}

/// <summary>Prometheus text exposition format 0.0.4 helpers.</summary>
internal static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Number(double v) => double.IsPositiveInfinity(v) ? "+Inf" : v.ToString("0.0###############", CultureInfo.InvariantCulture);

    public static string Escape(string labelValue) => labelValue.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    public static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public static void Sample(StringBuilder sb, string name, string labels, double value) =>
        sb.Append(name).Append('{').Append(labels).Append("} ").Append(Number(value)).Append('\n');
}
