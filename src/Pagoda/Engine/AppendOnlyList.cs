using System.Collections;

namespace Pagoda.Engine;

/// <summary>
/// A list that only grows, whose windows are O(1) snapshots: elements never change once written and a
/// full array is replaced (not resized in place), so a window keeps reading what it saw when it was taken
/// while the list grows on the engine thread. Cumulative outputs carry every token of a sequence at every
/// step; this makes each of them a reference instead of a copy.
/// </summary>
internal sealed class AppendOnlyList<T>
{
    private T[] _items = new T[16];

    public int Count { get; private set; }

    public T this[int index] => (uint)index < (uint)Count ? _items[index] : throw new ArgumentOutOfRangeException(nameof(index));

    public void Add(T item)
    {
        if (Count == _items.Length)
        {
            var grown = new T[_items.Length * 2];
            _items.AsSpan(0, Count).CopyTo(grown);
            _items = grown;
        }
        _items[Count++] = item;
    }

    /// <summary>Elements <paramref name="from"/> .. <see cref="Count"/>, as they are now.</summary>
    public IReadOnlyList<T> Window(int from) => from == Count ? [] : new Snapshot(_items, from, Count - from);

    private sealed class Snapshot(T[] items, int start, int count) : IReadOnlyList<T>
    {
        public int Count => count;

        public T this[int index] => (uint)index < (uint)count ? items[start + index] : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<T> GetEnumerator()
        {
            for (int i = 0; i < count; i++)
                yield return items[start + i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
