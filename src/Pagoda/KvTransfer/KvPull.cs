using System.Net.Sockets;
using Pagoda.Backends;

namespace Pagoda.KvTransfer;

/// <summary>
/// The consumer's side of one transfer, run on the thread pool: connect to the producer, ask for its blocks, and write
/// each layer's keys and values into the local blocks as soon as they arrive (the producer is reading the next layer
/// meanwhile). Every wait on the socket is bounded by the transfer timeout; any failure is a
/// <see cref="KvTransferException"/>, except the caller's cancellation.
/// </summary>
internal static class KvPull
{
    /// <summary>Pulls <paramref name="request"/>'s blocks from host:port into <paramref name="localBlockIds"/> (same order).</summary>
    public static async Task RunAsync(KvPullRequest request, string host, int port, int[] localBlockIds, IKvBlockCopy copy, PagedKvCache cache,
        TimeSpan timeout, CancellationToken ct)
    {
        string from = $"{host}:{port}";
        try
        {
            using var client = new TcpClient { NoDelay = true };
            using (var t = Deadline(timeout, ct))
                await client.ConnectAsync(host, port, t.Token);
            var stream = client.GetStream();
            using (var t = Deadline(timeout, ct))
                await stream.WriteAsync(KvTransferWire.EncodeRequest(request), t.Token);
            (KvPullStatus Status, string? Message, KvLayout? Layout, int NumBlocks) header;
            using (var t = Deadline(timeout, ct))
                header = await KvTransferWire.ReadResponseHeaderAsync(stream, t.Token);
            if (header.Status != KvPullStatus.Ok)
                throw new KvTransferException($"The KV producer at {from} refused the pull of request '{request.RequestId}' ({header.Status}): {header.Message}")
                    { Status = header.Status };
            // The producer checked the layout too; a mismatch here is a producer that does not speak this protocol right.
            if (header.Layout != request.Layout || header.NumBlocks != request.BlockIds.Length)
                throw new KvTransferException($"The KV producer at {from} answered {header.NumBlocks} blocks of {header.Layout}, "
                    + $"not the {request.BlockIds.Length} of {request.Layout} asked for.");
            long bytes = checked(localBlockIds.Length * request.Layout.BlockBytes);
            var keys = new byte[bytes];
            var values = new byte[bytes];
            for (int layer = 0; layer < request.Layout.NumLayers; layer++)
            {
                using (var t = Deadline(timeout, ct))
                {
                    await stream.ReadExactlyAsync(keys, t.Token);
                    await stream.ReadExactlyAsync(values, t.Token);
                }
                if (localBlockIds.Length > 0)
                    copy.CopyKvBlocksFromHost(cache, layer, localBlockIds, keys, values);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException e)
        {
            throw new KvTransferException($"The KV transfer of request '{request.RequestId}' from {from} timed out ({timeout.TotalSeconds:0.###} s without progress).", e);
        }
        catch (EndOfStreamException e)
        {
            throw new KvTransferException($"The KV producer at {from} closed the connection before sending all of request '{request.RequestId}'s blocks.", e);
        }
        catch (Exception e) when (e is SocketException or IOException or InvalidDataException)
        {
            throw new KvTransferException($"The KV transfer of request '{request.RequestId}' from {from} failed: {e.Message}", e);
        }
    }

    private static CancellationTokenSource Deadline(TimeSpan timeout, CancellationToken ct)
    {
        var t = CancellationTokenSource.CreateLinkedTokenSource(ct);
        t.CancelAfter(timeout);
        return t;
    }
}
