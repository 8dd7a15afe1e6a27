using XNet.Sweep;

namespace XNet.Cli.Tests;

/// <summary>samples/XNet.Sweep: a time-budgeted sweep of at least 3 trials on the embedded data that cancels a trial past its budget.</summary>
[TestClass]
public sealed class SweepSampleTests
{
    [TestMethod]
    public void SweepFinishesCancelsTheTrialPastItsBudgetAndPrintsTheBest()
    {
        var output = new StringWriter();
        var results = TimeBudgetedSweep.Run(TimeBudgetedSweep.DefaultTrials, TimeSpan.FromSeconds(25), output);

        Assert.HasCount(4, results);
        Assert.IsTrue(results.Take(3).All(r => r.Completed), output.ToString());
        Assert.IsFalse(results[3].Completed, "x-resnet-20-4 for 30 epochs must run past 25 s and be cancelled");
        Assert.IsLessThan(TimeSpan.FromSeconds(60), results[3].Elapsed, "cancelled within a batch of its budget, not at the end");
        Assert.IsTrue(results.Where(r => r.Completed).All(r => r.MicroAccuracy > 0.1), output.ToString());
        StringAssert.Contains(output.ToString(), "cancelled past its budget");
        StringAssert.Contains(output.ToString(), "Best trial: ");
    }
}
