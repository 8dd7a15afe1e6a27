using System.Diagnostics;
using static TorchSharp.torch;

/// <summary>
/// Times actions in rounds, each round running every action once in turn inside its own dispose scope, so that drift in
/// the machine's speed (another process, frequency, the JIT's tiers) lands on all of them alike.
/// </summary>
internal static class InterleavedRounds
{
    /// <summary>The milliseconds of each action's timed runs, after <paramref name="warmup"/> untimed rounds.</summary>
    public static List<double>[] Time(IReadOnlyList<Action> actions, int warmup, int repetitions)
    {
        var times = actions.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < warmup + repetitions; round++)
        {
            for (int i = 0; i < actions.Count; i++)
            {
                using var scope = NewDisposeScope();
                long start = Stopwatch.GetTimestamp();
                actions[i]();
                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (round >= warmup)
                {
                    times[i].Add(ms);
                }
            }
        }

        return times;
    }
}
