namespace Pagoda.Backends;

/// <summary>
/// A step's device sampling inputs, made the first time they are asked for: a device asks once it has launched the
/// forward, so that the host's plan (penalty lists, grammar masks) is made while the device computes. Null inputs ask
/// for the whole logits rows (some row is sampled on the host).
/// </summary>
public sealed class DeviceSamplingPlan(Func<DeviceSamplingInputs?> make)
{
    private DeviceSamplingInputs? _inputs;
    private bool _made;

    /// <summary>A plan whose inputs are already known.</summary>
    public static DeviceSamplingPlan Of(DeviceSamplingInputs? inputs) => new(() => inputs);

    /// <summary>The inputs, made now if they were not yet.</summary>
    public DeviceSamplingInputs? Inputs
    {
        get
        {
            if (!_made)
            {
                _inputs = make();
                _made = true;
            }
            return _inputs;
        }
    }

    /// <summary>The same plan with <paramref name="map"/> applied to its inputs once they are made (whole rows stay whole rows).</summary>
    public DeviceSamplingPlan Map(Func<DeviceSamplingInputs, DeviceSamplingInputs> map) => new(() => Inputs is { } i ? map(i) : null);
}
