using Pagoda.Loading;

namespace Pagoda.Models;

/// <summary>RoPE inverse frequencies, with linear and llama3 scaling, computed as transformers does.</summary>
public static class RotaryEmbedding
{
    /// <summary>inv_freq[i] = 1 / theta^(2i / headDim), then scaled: [headDim / 2].</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            float exponent = (float)(2 * i) / headDim;
            inv[i] = (float)(1.0 / Math.Pow(theta, exponent));
        }
        return scaling?.Type switch
        {
            null => inv,
            "linear" => inv.Select(f => (float)(f / scaling.Factor)).ToArray(),
            "llama3" => Llama3(inv, scaling),
            _ => throw new NotSupportedException($"rope type '{scaling.Type}'"),
        };
    }

    // Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between blended.
    private static float[] Llama3(float[] inv, RopeScaling s)
    {
        double lowFreqWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        double highFreqWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        var result = new float[inv.Length];
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            double scaled = wavelen > lowFreqWavelen ? inv[i] / s.Factor : inv[i];
            bool medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
            if (medium)
            {
                double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                scaled = (1 - smooth) * scaled / s.Factor + smooth * scaled;
            }
            result[i] = (float)scaled;
        }
        return result;
    }
}
