using System.Linq.Expressions;
using Microsoft.ML.Runtime;

namespace XNet.MLNet;

/// <summary>
/// The MLContext's own cancellation as a <see cref="CancellationToken"/>. <c>mlContext.CancelExecution()</c> (from
/// Microsoft.ML.Experimental, and what AutoML calls to end a trial past its time budget) marks the context and every
/// host registered from it as cancelled, on an interface internal to ML.NET (ICancelable.IsCanceled) that ML.NET's own
/// trainers poll. This polls the trainer's host the same way, every 50 ms and after every batch, and cancels the token it hands to the
/// training engine, which stops at the next batch boundary and writes a checkpoint. If a future ML.NET renames the
/// interface, only the caller's own token cancels.
/// </summary>
internal sealed class MlContextCancellation : IDisposable
{
    // host => ((ICancelable)host).IsCanceled, compiled once: it runs on a timer during training, where even a boxed bool a
    // poll would be garbage collected beside libtorch's calls.
    private static readonly (Type Interface, Func<IHost, bool> Read)? IsCanceled = CompileIsCanceled();

    private readonly CancellationTokenSource source;
    private readonly Timer? poll;

    // The host when ML.NET exposes its cancellation flag on it; null otherwise (only the caller's token cancels then).
    private readonly IHost? watched;

    private MlContextCancellation(IHost host, CancellationToken token)
    {
        source = CancellationTokenSource.CreateLinkedTokenSource(token);
        if (IsCanceled is not null && IsCanceled.Value.Interface.IsInstanceOfType(host))
        {
            watched = host;
            poll = new Timer(_ => Poll(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(50));
        }
    }

    /// <summary>Cancelled when the caller's token is, or when the MLContext behind the host is.</summary>
    public CancellationToken Token => source.Token;

    /// <summary>Links <paramref name="token"/> with the cancellation of the MLContext behind <paramref name="host"/>.</summary>
    public static MlContextCancellation Link(IHost host, CancellationToken token) => new(host, token);

    /// <summary>Checks the MLContext now (the trainer calls it after every batch, so a cancellation made during a batch stops the next one).</summary>
    public void Poll()
    {
        if (watched is not null && IsCanceled!.Value.Read(watched) && !source.IsCancellationRequested)
        {
            source.Cancel();
        }
    }

    private static (Type, Func<IHost, bool>)? CompileIsCanceled()
    {
        var cancelable = typeof(IHost).Assembly.GetType("Microsoft.ML.Runtime.ICancelable");
        var property = cancelable?.GetProperty("IsCanceled");
        if (cancelable is null || property?.PropertyType != typeof(bool))
        {
            return null;
        }

        var host = Expression.Parameter(typeof(IHost), "host");
        var read = Expression.Lambda<Func<IHost, bool>>(Expression.Property(Expression.Convert(host, cancelable), property), host);
        return (cancelable, read.Compile());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        poll?.Dispose();
        source.Dispose();
    }
}
