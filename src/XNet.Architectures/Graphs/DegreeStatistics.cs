namespace XNet.Architectures.Graphs;

/// <summary>Minimum, maximum and mean degree of one side of a bipartite graph.</summary>
/// <param name="Min">Smallest degree.</param>
/// <param name="Max">Largest degree.</param>
/// <param name="Mean">Mean degree.</param>
/// <param name="Isolated">Vertices with degree 0 (for inputs: channels no output reads).</param>
public sealed record DegreeStatistics(int Min, int Max, double Mean, int Isolated)
{
    internal static DegreeStatistics Of(IReadOnlyList<int> degrees)
    {
        int min = int.MaxValue, max = 0, isolated = 0;
        long sum = 0;
        foreach (int d in degrees)
        {
            min = Math.Min(min, d);
            max = Math.Max(max, d);
            sum += d;
            isolated += d == 0 ? 1 : 0;
        }

        return new DegreeStatistics(min, max, (double)sum / degrees.Count, isolated);
    }
}
