using System.CommandLine;
using System.Globalization;
using Pagoda.Tokenization;

namespace Pagoda.Cli.Commands;

/// <summary>`pagoda detokenize`: prints the text of comma-separated token ids (tokenizer.Decode).</summary>
internal static class DetokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = TokenizeCommand.TokenizerOption();
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids, e.g. 9707,1879.", Required = true };
        var skip = new Option<bool>("--skip-special-tokens") { Description = "Leave special tokens out of the text." };

        var cmd = new Command("detokenize", "Print the text of token ids.");
        cmd.Add(tokenizer);
        cmd.Add(ids);
        cmd.Add(skip);
        cmd.SetAction(r => CliErrors.Run(r.InvocationConfiguration.Error, () =>
        {
            var parsed = ParseIds(r.GetValue(ids)!);
            var tok = Tokenizer.FromFolder(r.GetValue(tokenizer) ?? EngineArgs.DefaultModel);
            foreach (int id in parsed)
                if (tok.IdToToken(id) is null)
                    throw new ArgumentException($"--ids: {id} is not in the vocabulary (size {tok.VocabSize})");
            r.InvocationConfiguration.Output.WriteLine(tok.Decode(parsed, r.GetValue(skip)));
            return 0;
        }));
        return cmd;
    }

    private static int[] ParseIds(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 1 && parts[0].Length == 0) return [];
        return parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int id) ? id
            : throw new ArgumentException($"--ids: '{p}' is not a token id")).ToArray();
    }
}
