using System.Globalization;
using XNet.Sweep;

// dotnet run -c Release --project samples/XNet.Sweep [-- TRIAL_BUDGET_SECONDS]
// Sweeps architecture, learning rate and epochs on the embedded Fashion-MNIST subset; a trial that runs past its
// budget is cancelled through its MLContext, the way AutoML ends one.
double budget = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 30;
var results = TimeBudgetedSweep.Run(TimeBudgetedSweep.DefaultTrials, TimeSpan.FromSeconds(budget), Console.Out);
return results.Any(r => r.Completed) ? 0 : 1;
