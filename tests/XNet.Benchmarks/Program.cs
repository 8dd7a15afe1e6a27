// Benchmark harness (not run by CI). Results go to docs/benchmarks.md with the machine and the date. Every mode takes
// --malloc fixed|default: fixed (the default) pins glibc malloc's thresholds first, which takes page faults out of the
// timings (GlibcAllocator.cs); default keeps glibc's own, as a plain process has them.
//
//   dotnet run -c Release --project tests/XNet.Benchmarks -- throughput [--data DIR] [--models a,b] [--batches N] [--warmup N] [--batch-size N]
//   dotnet run -c Release --project tests/XNet.Benchmarks -- accuracy   [--data DIR] [--model NAME] [--epochs N] [--batch-size N] [--lr X] [--seed N]
//   dotnet run -c Release --project tests/XNet.Benchmarks -- memory     [--data DIR] [--model NAME] [--epochs N]  (the ML.NET trainer with checkpoints; RSS per epoch)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- onnx-expander [--seconds X]   (ONNX Runtime: dense-weight vs gather form, docs/onnx.md)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- persistence [--calls N] [--warmup N] [--rows-small N] [--rows-large N]
//       (TorchSharp XNetTransformer vs the Model.Save/Load ONNX chain: batch images/s, PredictionEngine latency; docs/benchmarks.md)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- persistence --models x-resnet-20-4,resnet-20 [--input 1x28x28] [--classes 10]
//        [--rows 2000] [--rounds 3]   (the same for models side by side, in turns, each round's figures against the first model's)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- graphs [--models a,b]   (spectral gaps per layer shape, docs/graphs.md; deterministic)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- layers [--models a,b] [--densities 2,4,8,16] [--forms dense,masked,...]
//        [--kernel 3|1|0] [--batch-size 64] [--warmup 3] [--repetitions 15] [--threads 2]   (fwd+bwd per layer form vs dense)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- phases [--models a,b] [--density 4] [--batch-size 64] [--threads 2] [--input CxHxW]
//        [--kernel 3|1]
//        (where a DirectSparse 3x3 layer's time goes: layout, forward, input gradient, weight gradient, the autograd call, dense)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- profile [--models resnet-20,x-resnet-20-4] [--input 1x28x28] [--classes 10] [--split]
//        [--batch-size 128] [--warmup 5] [--steps 20]   (a training step by phase; with --split its forward pass by op class too, the expander units then run apart)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- models [--models resnet-20,x-resnet-20-4,s-resnet-20-4] [--batch-size 64]
//        [--warmup 5] [--batches 30] [--threads 2] [--size S] [--classes N]
//        (whole-model training img/s on synthetic batches vs the first model; --size: 3xSxS input instead of the family's)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- acceptance [--runs 3] [--goals training,photo-layers,photo-step,scoring,onnx] [--data DIR]
//        (the speed goals against the dense twins, each ratio side by side in one run, the median of the runs against its
//        threshold; exit code 1 when a goal is missed; docs/benchmarks.md)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- ceiling [--model x-resnet-20-4] [--input 1x28x28] [--classes 10] [--batch-size 128]
//        [--rounds 5] [--steps 5] [--repetitions 15] [--goal X]
//        (the training step against the dense twin's, split into the expander layers and the rest; the ratio it could reach with
//        every expander layer at its density limit, and what a goal would need of them)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- photos --out DIR [--count 100000] [--size 160] [--classes 10] [--seed 0]
//        (writes a learnable image folder of JPEGs, DIR/train and DIR/val, one shape per class, for the image-folder benchmarks)
//   dotnet run -c Release --project tests/XNet.Benchmarks -- loader --data DIR/train [--size 96] [--batch-size 128]
//        (an image folder's cache build or reuse time, then the batch loader's images/s over one epoch of it)
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using TorchSharp;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Data;
using XNet.MLNet.Training;
using XNet.Tests.Shared;
using static TorchSharp.torch;

var arguments = args.Skip(1).Chunk(2).ToDictionary(p => p[0].TrimStart('-'), p => p.Length > 1 ? p[1] : "");
string Option(string name, string fallback) => arguments.TryGetValue(name, out var v) ? v : fallback;
string data = Option("data", "/usr/share/datasets/fashion-mnist"); // where Debian's dataset-fashion-mnist package puts it
int Int(string name, int fallback) =>
    int.TryParse(Option(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture, out int value) ? value
        : throw new ArgumentException($"--{name} must be a whole number, got '{Option(name, "")}'.");
double Number(string name, double fallback) =>
    double.TryParse(Option(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture, out double value) ? value
        : throw new ArgumentException($"--{name} must be a number, got '{Option(name, "")}'.");
ImageShape ImageShapeOption(string name, string fallback) =>
    Option(name, fallback).Split('x').Select(side => int.TryParse(side, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : 0).ToArray()
        is [> 0 and var c, > 0 and var h, > 0 and var w] ? new ImageShape(c, h, w)
        : throw new ArgumentException($"--{name} must be CxHxW with positive numbers, e.g. 1x28x28, got '{Option(name, fallback)}'.");
string[] List(string name, string fallback) => Option(name, fallback).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

try
{
    return Run();
}
catch (Exception ex) when (ex is ArgumentException or IOException or FormatException)
{
    // A bad option or missing data: one line naming it, not a stack trace.
    Console.Error.WriteLine($"error: {ex.Message}");
    return 2;
}

int Run()
{
    // Before the first tensor: glibc's moving mmap threshold makes layer timings depend on what ran before (GlibcAllocator).
    string allocator = Option("malloc", "fixed") switch
    {
        "fixed" => GlibcAllocator.KeepFreedMemory() ? "glibc thresholds fixed" : "not glibc: default allocator",
        "default" => "glibc defaults",
        var other => throw new ArgumentException($"--malloc must be 'fixed' or 'default', got '{other}'."),
    };
    TorchRuntime.EnsureLoaded();
    if (arguments.ContainsKey("threads"))
    {
        set_num_threads(Int("threads", 2));
    }

    Console.WriteLine($"# {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, torch threads {get_num_threads()}, " +
                      $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}, malloc: {allocator}");

    switch (args.FirstOrDefault())
    {
        case "throughput":
            Throughput();
            break;
        case "accuracy":
            Accuracy();
            break;
        case "memory":
            Memory();
            break;
        case "graphs":
            GraphQuality.Run(List("models", "x-resnet-20-4,x-densenet-bc-40-24-2,x-resnet-18-2,x-mobilenet-0.5-4"));
            break;
        case "layers":
            LayerBenchmark.Layers(List("models", "x-resnet-20-4,x-densenet-bc-40-24-2,x-resnet-18-2,x-mobilenet-0.5-4"),
                List("densities", "2,4,8,16").Select(d => 1 / double.Parse(d, CultureInfo.InvariantCulture)).ToArray(),
                List("forms", string.Join(",", LayerBenchmark.DefaultForms)), Int("batch-size", 64), Int("warmup", 3), Int("repetitions", 15),
                Int("kernel", 0));
            break;
        case "models":
            LayerBenchmark.Models(List("models", "resnet-20,x-resnet-20-4,s-resnet-20-4"), Int("batch-size", 64), Int("warmup", 5), Int("batches", 30),
                arguments.ContainsKey("size") ? Int("size", 32) : null, arguments.ContainsKey("classes") ? Int("classes", 10) : null);
            break;
        case "profile":
            StepProfile.Run(List("models", "resnet-20,x-resnet-20-4"),
                ImageShapeOption("input", "1x28x28"), Int("classes", 10), Int("batch-size", 128), Int("warmup", 5), Int("steps", 20),
                arguments.ContainsKey("split"));
            break;
        case "phases":
            KernelPhases.Run(List("models", "x-resnet-20-4,x-densenet-bc-40-24-2"), 1 / Number("density", 4),
                Int("batch-size", 64), Int("warmup", 15), Int("repetitions", 15),
                arguments.ContainsKey("input") ? ImageShapeOption("input", "3x32x32") : null, Int("kernel", 3));
            break;
        case "ceiling":
            StepCeiling.Run(Option("model", "x-resnet-20-4"), ImageShapeOption("input", "1x28x28"), Int("classes", 10), Int("batch-size", 128),
                Int("rounds", 5), Int("steps", 5), Int("repetitions", 15), arguments.ContainsKey("goal") ? Number("goal", 0) : null);
            break;
        case "acceptance":
            return SpeedAcceptance.Run(data, List("goals", string.Join(",", SpeedAcceptance.Groups)), Int("runs", 3));
        case "loader":
            PhotoLoader.Run(Option("data", "photos/train"), Int("size", 96), Int("batch-size", 128));
            break;
        case "photos":
            PhotoFolder.Write(Option("out", "photos"), Int("count", 100_000), Int("size", 160), Int("classes", 10), Int("seed", 0));
            break;
        case "onnx-expander":
            OnnxExpanderBenchmark.Run(Number("seconds", 1));
            break;
        case "persistence" when arguments.ContainsKey("models"):
            PersistenceBenchmark.Run(Option("models", "").Split(',').Select(name =>
                    (name, ImageShapeOption("input", "1x28x28"), Int("classes", 10), Int("rows", 2000))),
                Int("calls", 200), Int("warmup", 20), Int("rounds", 3));
            break;
        case "persistence":
            PersistenceBenchmark.Run(new[]
                {
                    ("x-resnet-20-4", new ImageShape(1, 28, 28), 10, Int("rows-small", 2000)),
                    ("x-resnet-18-2", new ImageShape(3, 224, 224), 1000, Int("rows-large", 64)),
                },
                Int("calls", 200), Int("warmup", 20), rounds: 1);
            break;
        default:
            Console.Error.WriteLine("usage: acceptance|ceiling|throughput|accuracy|memory|onnx-expander|persistence|graphs|layers|phases|models|photos|loader [--option value ...] (see the comment at the top of Program.cs)");
            return 2;
    }

    return 0;
}

ImageSet Load(string split) => FullFashionMnist.Load(data, split);

void Throughput()
{
    var train = Load("train");
    int batches = Int("batches", 60);
    int warmup = Int("warmup", 5);
    int batchSize = Int("batch-size", 128);
    Console.WriteLine("| model | parameters | training img/s | batches timed | batch |");
    Console.WriteLine("|---|---|---|---|---|");
    foreach (string name in Option("models", "resnet-20,x-resnet-20-4").Split(','))
    {
        using var model = FullFashionMnist.Classifier(name, train, 0);
        long parameters = model.ParameterCount;
        var options = new XNetTrainer.Options { Epoch = 1, BatchSize = batchSize };
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
    int seed = Int("seed", 0);
    var options = new XNetTrainer.Options
    {
        Epoch = Int("epochs", 10),
        BatchSize = Int("batch-size", 128),
        LearningRate = (float)Number("lr", 0.1),
        Seed = seed,
    };
    using var model = FullFashionMnist.Classifier(name, train, seed);
    var engine = new TrainingEngine(model.Network, options, CPU);
    engine.EpochCompleted += m => Console.WriteLine(
        $"epoch {m.Epoch}/{m.Epochs}: train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:P2}, test loss {m.ValidationLoss:F4} " +
        $"acc {m.ValidationAccuracy:P2}, lr {m.LearningRate:G3}, {m.ImagesPerSecond:F0} img/s, {m.Elapsed:hh\\:mm\\:ss}");
    Console.WriteLine($"{name}: {model.ParameterCount:N0} parameters, {options}");
    var history = engine.Fit(train, test);
    Console.WriteLine($"RESULT {name} epochs {options.Epoch} test accuracy {history[^1].ValidationAccuracy:P2}");
}

// Resident memory of a long run through the product path (IDataView -> XNetTrainer -> engine, checkpoint every epoch),
// read from /proc/self/status at the end of every epoch. No forced garbage collection: what a user's process sees.
void Memory()
{
    var mlContext = new MLContext(seed: 0);
    var (images, labels) = FashionMnist.Files(data, "train");
    var train = IdxDataset.Load(mlContext, images, labels, FashionMnist.ClassNames);
    string run = Path.Combine(Path.GetTempPath(), $"xnet-memory-{Guid.NewGuid():N}");
    int epochs = Int("epochs", 20);
    var rss = new List<double>();
    var options = new XNetTrainer.Options
    {
        Architecture = Option("model", "x-resnet-20-4"),
        Epoch = epochs,
        Seed = 0,
        Device = "cpu",
        WorkspacePath = run,
        MetricsCallback = m =>
        {
            rss.Add(ResidentMegabytes());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {m.Epoch} | {rss[^1]:F1} | {GC.GetTotalMemory(false) / 1048576.0:F1} | {m.TrainLoss:F4} | {m.ImagesPerSecond:F0} |"));
        },
    };
    Console.WriteLine($"memory: {options.Architecture}, {train.GetRowCount():N0} images from {data}, {epochs} epochs, checkpoint every epoch");
    Console.WriteLine("| epoch | resident MB | managed heap MB | train loss | img/s |");
    Console.WriteLine("|---|---|---|---|---|");
    using (mlContext.MulticlassClassification.Trainers.XNet(options).Fit(train))
    {
    }

    int from = Math.Min(2, rss.Count) - 1;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"resident memory from the end of epoch {from + 1} to the end: {rss[from]:F1} -> {rss[^1]:F1} MB ({100 * (rss[^1] / rss[from] - 1):+0.0;-0.0} %), peak {rss.Max():F1} MB"));
    Directory.Delete(run, recursive: true);
}

static double ResidentMegabytes()
{
    string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
    return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
}
