// Benchmark harness (not run by CI). Results go to docs/benchmarks.md with the machine and the date.
//
//   dotnet run -c Release --project tests/XNet.Benchmarks -- throughput [--data DIR] [--models a,b] [--batches N] [--warmup N] [--batch-size N]
//   dotnet run -c Release --project tests/XNet.Benchmarks -- accuracy   [--data DIR] [--model NAME] [--epochs N] [--batch-size N] [--lr X] [--seed N]
//   dotnet run -c Release --project tests/XNet.Benchmarks -- onnx-expander [--seconds X]   (ONNX Runtime: dense-weight vs gather form, docs/onnx.md)
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Data;
using XNet.MLNet.Training;
using static TorchSharp.torch;

var arguments = args.Skip(1).Chunk(2).ToDictionary(p => p[0].TrimStart('-'), p => p.Length > 1 ? p[1] : "");
string Option(string name, string fallback) => arguments.TryGetValue(name, out var v) ? v : fallback;
string data = Option("data", FashionMnist.DebianDirectory);

TorchRuntime.EnsureLoaded();
Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, torch threads {get_num_threads()}, " +
                  $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}");

switch (args.FirstOrDefault())
{
    case "throughput":
        Throughput();
        break;
    case "accuracy":
        Accuracy();
        break;
    case "onnx-expander":
        OnnxExpanderBenchmark.Run(double.Parse(Option("seconds", "1"), CultureInfo.InvariantCulture));
        break;
    default:
        Console.Error.WriteLine("usage: throughput|accuracy|onnx-expander [--option value ...] (see the comment at the top of Program.cs)");
        return 2;
}

return 0;

ImageSet Load(string split)
{
    var (images, labels) = FashionMnist.Files(data, split);
    return IdxDataset.LoadImageSet(images, labels, FashionMnist.ClassNames);
}

// The trainer's own model construction (normalisation from the training images, then the zoo network).
XNetModelParameters Classifier(string name, ImageSet train, long seed)
{
    manual_seed(seed);
    var (mean, std) = train.ChannelStatistics();
    return XNetModelParameters.Create(name, seed, train.Shape, FashionMnist.ClassNames, mean, std, CPU);
}

void Throughput()
{
    var train = Load("train");
    int batches = int.Parse(Option("batches", "60"), CultureInfo.InvariantCulture);
    int warmup = int.Parse(Option("warmup", "5"), CultureInfo.InvariantCulture);
    int batchSize = int.Parse(Option("batch-size", "128"), CultureInfo.InvariantCulture);
    Console.WriteLine("| model | parameters | training img/s | batches timed | batch |");
    Console.WriteLine("|---|---|---|---|---|");
    foreach (string name in Option("models", "resnet-20,x-resnet-20-4").Split(','))
    {
        using var model = Classifier(name, train, 0);
        long parameters = model.ParameterCount;
        var options = new TrainingOptions { Epochs = 1, BatchSize = batchSize };
        var engine = new TrainingEngine(model.Network, options, CPU);
        var clock = new Stopwatch();
        int images = 0;
        using var stop = new CancellationTokenSource();
        engine.BatchCompleted += p =>
        {
            if (p.Batch == warmup)
            {
                clock.Start();
            }
            else if (p.Batch > warmup)
            {
                images += batchSize;
            }

            if (p.Batch == warmup + batches)
            {
                clock.Stop();
                stop.Cancel();
            }
        };
        try
        {
            engine.Fit(train, null, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        Console.WriteLine($"| {name} | {parameters:N0} | {images / clock.Elapsed.TotalSeconds:F0} | {batches} | {batchSize} |");
    }
}

void Accuracy()
{
    var train = Load("train");
    var test = Load("t10k");
    string name = Option("model", "x-resnet-20-4");
    int seed = int.Parse(Option("seed", "0"), CultureInfo.InvariantCulture);
    var options = new TrainingOptions
    {
        Epochs = int.Parse(Option("epochs", "10"), CultureInfo.InvariantCulture),
        BatchSize = int.Parse(Option("batch-size", "128"), CultureInfo.InvariantCulture),
        LearningRate = double.Parse(Option("lr", "0.1"), CultureInfo.InvariantCulture),
        Seed = seed,
    };
    using var model = Classifier(name, train, seed);
    var engine = new TrainingEngine(model.Network, options, CPU);
    engine.EpochCompleted += m => Console.WriteLine(
        $"epoch {m.Epoch}/{m.Epochs}: train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:P2}, test loss {m.ValidationLoss:F4} " +
        $"acc {m.ValidationAccuracy:P2}, lr {m.LearningRate:G3}, {m.ImagesPerSecond:F0} img/s, {m.Elapsed:hh\\:mm\\:ss}");
    Console.WriteLine($"{name}: {model.ParameterCount:N0} parameters, {options}");
    var history = engine.Fit(train, test);
    Console.WriteLine($"RESULT {name} epochs {options.Epochs} test accuracy {history[^1].ValidationAccuracy:P2}");
}
