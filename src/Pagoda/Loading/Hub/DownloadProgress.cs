namespace Pagoda.Loading.Hub;

/// <summary>
/// How far a model download has got, reported through <see cref="IProgress{T}"/> (the library draws
/// nothing itself). Byte counts cover every file being fetched in this resolution.
/// </summary>
/// <param name="Repo">The repo id being fetched.</param>
/// <param name="File">The file whose bytes just arrived (or that just finished).</param>
/// <param name="BytesDone">Bytes on disk so far, including resumed partial files.</param>
/// <param name="BytesTotal">Bytes of every file to fetch, when known.</param>
/// <param name="FilesDone">Files finished.</param>
/// <param name="FilesTotal">Files to fetch.</param>
public sealed record DownloadProgress(string Repo, string File, long BytesDone, long? BytesTotal, int FilesDone, int FilesTotal);
