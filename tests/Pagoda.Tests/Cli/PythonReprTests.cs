using Pagoda.Cli.Commands;

namespace Pagoda.Tests.Cli;

public class PythonReprTests
{
    [Theory]
    [InlineData("hello", "'hello'")]
    [InlineData("it's", "\"it's\"")]
    [InlineData("both ' and \"", "'both \\' and \"'")]
    [InlineData("a\nb\tc\\", "'a\\nb\\tc\\\\'")]
    [InlineData("\u0001\u007f", "'\\x01\\x7f'")]
    [InlineData("café 你好 👋", "'café 你好 👋'")]
    [InlineData("\u00a0\u200b\u2028", "'\\xa0\\u200b\\u2028'")]
    public void MatchesPythonRepr(string input, string expected) => Assert.Equal(expected, PythonRepr.Of(input));
}
