using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Pagoda.Tests")]
