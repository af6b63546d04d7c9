using System.Collections.ObjectModel;

namespace Pagoda.Loading;

/// <summary>
/// A read-only list that compares by its items, so records holding one (<see cref="ModelConfig"/>,
/// <see cref="RopeScaling"/>) stay equal when read twice from equal files.
/// </summary>
public sealed class ValueList<T>(IList<T> items) : ReadOnlyCollection<T>(items), IEquatable<ValueList<T>>
{
    /// <inheritdoc />
    public bool Equals(ValueList<T>? other) => other != null && this.SequenceEqual(other);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ValueList<T> other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in this)
            hash.Add(item);
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => $"[{string.Join(", ", this)}]";
}
