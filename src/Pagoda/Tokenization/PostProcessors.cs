namespace Pagoda.Tokenization;

/// <summary>HF "post_processor": adds special tokens around an encoded single sequence.</summary>
internal abstract class PostProcessor
{
    public abstract List<int> Process(List<int> ids);
}

/// <summary>ByteLevel only adjusts offsets, which Pagoda does not track: ids pass through.</summary>
internal sealed class PassThroughPostProcessor : PostProcessor
{
    public override List<int> Process(List<int> ids) => ids;
}

internal sealed class SequencePostProcessor(IReadOnlyList<PostProcessor> steps) : PostProcessor
{
    public override List<int> Process(List<int> ids)
    {
        foreach (var step in steps) ids = step.Process(ids);
        return ids;
    }
}

/// <summary>
/// HF "TemplateProcessing" for a single sequence: each template item is either the sequence itself
/// or the ids of a named special token.
/// </summary>
internal sealed class TemplatePostProcessor(IReadOnlyList<int[]?> single) : PostProcessor
{
    public override List<int> Process(List<int> ids)
    {
        var output = new List<int>(ids.Count + 4);
        foreach (var item in single)
        {
            if (item is null) output.AddRange(ids);
            else output.AddRange(item);
        }
        return output;
    }
}

/// <summary>HF "BertProcessing"/"RobertaProcessing" for one sequence: cls, the sequence, sep.</summary>
internal sealed class ClsSepPostProcessor(int cls, int sep) : PostProcessor
{
    public override List<int> Process(List<int> ids) => [cls, .. ids, sep];
}
