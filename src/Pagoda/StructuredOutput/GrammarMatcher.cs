using System.Text;

namespace Pagoda.StructuredOutput;

/// <summary>
/// The per-request state of structured generation: advanced by each sampled token, asked for the mask of
/// the tokens allowed next. Not thread-safe (one request, one thread at a time); the grammar it reads is.
/// </summary>
public sealed class GrammarMatcher
{
    private readonly CompiledGrammar _g;
    private readonly StepScratch _scratch = new();
    private PdaState _state;
    private bool _eosAccepted;

    public GrammarMatcher(CompiledGrammar g)
    {
        ArgumentNullException.ThrowIfNull(g);
        _g = g;
        _state = g.Start;
    }

    /// <summary>Ints of the bitmask <see cref="FillNextTokenBitmask"/> writes.</summary>
    public int BitmaskWords => _g.Vocabulary.BitmaskWords;

    /// <summary>EOS was accepted, or nothing but EOS can follow.</summary>
    public bool IsTerminated => _eosAccepted || _state.Heads.Length == 0;

    /// <summary>The output so far is a complete match: EOS is allowed now.</summary>
    public bool CanTerminate => !_eosAccepted && _state.Accepting;

    /// <summary>
    /// Writes the allowed-token bitmask for the next step: bit (id % 32) of word id / 32 set means allowed.
    /// EOS ids are allowed only when the output so far is complete. After termination only EOS is set.
    /// </summary>
    public void FillNextTokenBitmask(Span<int> bitmask)
    {
        int words = _g.Vocabulary.BitmaskWords;
        if (bitmask.Length < words) throw new ArgumentException($"bitmask needs {words} ints", nameof(bitmask));
        bitmask = bitmask[..words];
        if (_eosAccepted)
        {
            bitmask.Clear();
            foreach (int eos in _g.Vocabulary.EosTokenIds) bitmask[eos >> 5] |= 1 << (eos & 31);
            return;
        }
        _g.Masker.Fill(_state, bitmask, _scratch);
    }

    /// <summary>Advances by one token; false (and no change) when the grammar does not allow it.</summary>
    public bool AcceptToken(int tokenId)
    {
        if (_eosAccepted) return false;
        if (_g.Vocabulary.IsEos(tokenId))
        {
            if (!_state.Accepting) return false;
            _eosAccepted = true;
            return true;
        }
        return _g.Vocabulary.TokenBytes(tokenId) is { } bytes && AcceptBytes(bytes);
    }

    /// <summary>Advances by raw bytes (all or nothing); for tests and for forcing text into the output.</summary>
    public bool AcceptBytes(ReadOnlySpan<byte> bytes)
    {
        if (_eosAccepted) return false;
        var s = _state;
        foreach (byte b in bytes)
        {
            var next = s.Step(_g.Tables, b, _scratch);
            if (next is null) return false;
            s = next;
        }
        _state = s;
        return true;
    }

    /// <summary>Advances by the UTF-8 bytes of a string (all or nothing).</summary>
    public bool AcceptString(string text) => AcceptBytes(Encoding.UTF8.GetBytes(text));

    /// <summary>An independent matcher in the same state (cheap: states are immutable and shared).</summary>
    public GrammarMatcher Fork()
    {
        var copy = new GrammarMatcher(_g) { _state = _state, _eosAccepted = _eosAccepted };
        return copy;
    }

    /// <summary>Back to the state before any token.</summary>
    public void Reset()
    {
        _state = _g.Start;
        _eosAccepted = false;
    }
}
