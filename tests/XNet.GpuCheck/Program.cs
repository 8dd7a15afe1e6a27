// The GPU check (issue: train on the GPU). Run by build/gpu-check.sh on the device machine; runs here on the CPU too.
//
//   XNet.GpuCheck [--device cuda|cpu] [--images N] [--batch-size N] [--epochs N] [--models a,b@grouped,...]
//
// 1. Loads TorchSharp against whatever libtorch LD_LIBRARY_PATH provides and prints the exact error if it cannot.
// 2. For each model (default x-resnet-20-4 and x-densenet-bc-40-24-2) on CIFAR-shaped random data (3x32x32, 10 classes):
//    the eval-mode forward pass of the same seeded model on the CPU and on the device (max |diff| / max |logit|), then
//    training images/s on the device through the project's TrainingEngine (the last epoch's rate; the first warms up).
//    A name ending in @grouped runs every expander layer as ExpanderExecution.BlockGrouped (Auto runs Reference on a GPU).
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using XNet.MLNet;
using XNet.Architectures;
using XNet.Architectures.Layers;
using XNet.MLNet.Training;
using static TorchSharp.torch;

var options = args.Chunk(2).ToDictionary(p => p[0].TrimStart('-'), p => p.Length > 1 ? p[1] : "");
string Option(string name, string fallback) => options.TryGetValue(name, out var v) ? v : fallback;
int Int(string name, int fallback) => int.Parse(Option(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

string requested = Option("device", "cuda");
int images = Int("images", 4096), batchSize = Int("batch-size", 128), epochs = Int("epochs", 3);
Console.WriteLine($"gpu-check: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}, " +
                  $"LD_LIBRARY_PATH={Environment.GetEnvironmentVariable("LD_LIBRARY_PATH")}");
try
{
    TorchRuntime.EnsureLoaded();
    Console.WriteLine($"libtorch loaded; CUDA available: {cuda.is_available()}, devices: {(cuda.is_available() ? cuda.device_count() : 0)}, " +
                      $"cuDNN: {cuda.is_available() && cuda.is_cudnn_available()}");
}
catch (Exception ex)
{
    Report("loading libtorch", ex);
    return 3;
}

DeviceChoice choice;
try
{
    choice = TorchDevices.Choose(requested, fallbackToCpu: false);
    Console.WriteLine($"device: {choice.Description}");
}
catch (Exception ex)
{
    Report($"choosing device '{requested}'", ex);
    return 4;
}

var input = new ImageShape(3, 32, 32);
var data = RandomImages(input, images, classes: 10, seed: 1);
int failures = 0;
foreach (string name in Option("models", "x-resnet-20-4,x-densenet-bc-40-24-2").Split(',', StringSplitOptions.RemoveEmptyEntries))
{
    try
    {
        // cuDNN convolutions use TF32 by default on Ampere and later (as in PyTorch), which rounds inputs to 10 mantissa
        // bits: parity is judged in strict float32 and the TF32 figure is printed beside it.
        double parity = ForwardParity(name, input, choice.Device, tf32: false);
        double parityTf32 = ForwardParity(name, input, choice.Device, tf32: true);
        double rate = TrainingRate(name, data, choice.Device, epochs, batchSize);
        Console.WriteLine(FormattableString.Invariant(
            $"RESULT {name} device={choice.Device} train_images_per_second={rate:F0} forward_rel_diff_vs_cpu={parity:E2} (tf32 {parityTf32:E2})"));
        failures += parity > 1e-4 ? 1 : 0;
    }
    catch (Exception ex)
    {
        Report(name, ex);
        failures++;
    }
}

return failures == 0 ? 0 : 1;

static ImageSet RandomImages(ImageShape shape, int count, int classes, int seed)
{
    var random = new Random(seed);
    var pixels = new float[count * shape.Size];
    for (int i = 0; i < pixels.Length; i++)
    {
        pixels[i] = random.Next(256);
    }

    return new ImageSet(shape, pixels, Enumerable.Range(0, count).Select(i => i % classes).ToArray(), classes);
}

// Max |logits_device - logits_cpu| / max |logits_cpu| of the same seeded model in eval mode on 16 images.
static double ForwardParity(string name, ImageShape input, Device device, bool tf32)
{
    using var scope = NewDisposeScope();
    bool defaultTf32 = device.type == DeviceType.CUDA && backends.cudnn.allow_tf32;
    if (device.type == DeviceType.CUDA)
    {
        backends.cudnn.allow_tf32 = tf32;
    }

    manual_seed(0);
    using var model = Create(name, input, 10);
    model.eval();
    var x = randn(16, input.Channels, input.Height, input.Width, generator: new Generator(7)) * 60 + 120;
    using var noGrad = no_grad();
    var cpuLogits = model.call(x);
    model.to(device);
    var deviceLogits = model.call(x.to(device)).cpu();
    if (device.type == DeviceType.CUDA)
    {
        backends.cudnn.allow_tf32 = defaultTf32;
    }

    return (deviceLogits - cpuLogits).abs().max().item<float>() / cpuLogits.abs().max().item<float>();
}

static double TrainingRate(string name, ImageSet data, Device device, int epochs, int batchSize)
{
    manual_seed(0);
    using var model = Create(name, data.Shape, data.NumClasses);
    var options = new XNetTrainer.Options { Epoch = epochs, BatchSize = batchSize, LearningRate = 0.05f, Seed = 0 };
    var engine = new TrainingEngine(model, options, device);
    var clock = Stopwatch.StartNew();
    var history = engine.Fit(data);
    foreach (var epoch in history)
    {
        Console.WriteLine(FormattableString.Invariant(
            $"  {name} epoch {epoch.Epoch}: loss {epoch.TrainLoss:F4}, {epoch.ImagesPerSecond:F0} img/s"));
    }

    Console.WriteLine(FormattableString.Invariant($"  {name}: {history.Count} epochs in {clock.Elapsed.TotalSeconds:F1} s"));
    return history.Final.ImagesPerSecond;
}

// The zoo model, with every expander layer forced to the grouped form when the name ends in @grouped.
static nn.Module<Tensor, Tensor> Create(string entry, ImageShape input, int classes)
{
    var model = ModelZoo.Create(entry.Split('@')[0], input, classes, seed: 0);
    if (entry.EndsWith("@grouped", StringComparison.Ordinal))
    {
        foreach (var layer in model.modules().OfType<ExpanderConv2d>())
        {
            layer.Execution = ExpanderExecution.BlockGrouped;
        }
    }

    return model;
}

static void Report(string what, Exception ex)
{
    Console.WriteLine($"FAILED {what}:");
    for (var e = ex; e is not null; e = e.InnerException)
    {
        Console.WriteLine($"  {e.GetType().FullName}: {e.Message}");
    }
}
