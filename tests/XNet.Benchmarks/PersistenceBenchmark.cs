using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using XNet.Architectures;
using XNet.MLNet;
using XNet.MLNet.Data;
using XNet.MLNet.Training;
using static TorchSharp.torch;

/// <summary>
/// Scoring speed of an X-Net in memory (TorchSharp, <see cref="XNetTransformer"/>) against the same model saved with
/// mlContext.Model.Save and loaded with mlContext.Model.Load (ML.NET's OnnxTransformer over ONNX Runtime): batch
/// Transform + cursor images/s, and PredictionEngine latency (median and p90 of single calls after warm-up).
/// Random weights and random pixels; the agreement of the two paths is printed as well.
/// </summary>
internal static class PersistenceBenchmark
{
    /// <summary>
    /// Scores each model in turn for <paramref name="rounds"/> rounds; with several rounds, prints per model the medians of
    /// the rounds and of each round's ratio to the first model (both paths' batch images/s and latency).
    /// </summary>
    public static void Run(IEnumerable<(string Name, ImageShape Shape, int Classes, int Rows)> models, int calls, int warmup, int rounds)
    {
        Console.WriteLine($"ONNX Runtime {OrtEnv.Instance().GetVersionString()} (default threads in the loaded model; its thread settings are not persisted)");
        Console.WriteLine();
        Console.WriteLine("| model | input | classes | path | batch images/s | PredictionEngine median (p90) ms | save s / zip bytes | load s |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---|---:|");
        var list = models.ToList();
        var figures = new List<ScoringFigures[]>();
        for (int round = 0; round < rounds; round++)
        {
            figures.Add(list.Select(m =>
            {
                var f = Score(m.Name, m.Shape, m.Classes, m.Rows, calls, warmup);
                string input = $"{m.Shape.Channels}x{m.Shape.Height}x{m.Shape.Width}";
                Console.WriteLine($"| {m.Name} | {input} | {m.Classes} | TorchSharp XNetTransformer | {f.Torch:N0} | {f.TorchMs:F3} ({f.TorchP90:F3}) | | |");
                Console.WriteLine($"| {m.Name} | {input} | {m.Classes} | ONNX, after Model.Load | {f.Onnx:N0} | {f.OnnxMs:F3} ({f.OnnxP90:F3}) | " +
                                  $"{f.SaveSeconds:F2} / {f.ZipBytes:N0} | {f.LoadSeconds:F2} |");
                Console.Error.WriteLine($"{m.Name}: {m.Rows} rows, max |score difference| {f.MaxDifference:E2}, same PredictedLabel on {f.SameLabels}/{m.Rows}");
                return f;
            }).ToArray());
        }

        if (rounds > 1)
        {
            Console.WriteLine();
            Console.WriteLine($"Medians over {rounds} rounds; ratios are each round's against {list[0].Name}'s in the same round (above 1: faster).");
            Console.WriteLine();
            Console.WriteLine("| model | TorchSharp images/s | ratio | ONNX images/s | ratio | TorchSharp latency ms | ratio | ONNX latency ms | ratio |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (int m = 0; m < list.Count; m++)
            {
                var mine = figures.Select(round => round[m]).ToArray();
                var ratios = figures.Select(round => (round[m].Torch / round[0].Torch, round[m].Onnx / round[0].Onnx,
                    round[0].TorchMs / round[m].TorchMs, round[0].OnnxMs / round[m].OnnxMs)).ToArray();
                Console.WriteLine($"| {list[m].Name} | {ModelSpeed.Median(mine.Select(f => f.Torch)):N0} | {ModelSpeed.Median(ratios.Select(r => r.Item1)):F2} | " +
                                  $"{ModelSpeed.Median(mine.Select(f => f.Onnx)):N0} | {ModelSpeed.Median(ratios.Select(r => r.Item2)):F2} | " +
                                  $"{ModelSpeed.Median(mine.Select(f => f.TorchMs)):F3} | {ModelSpeed.Median(ratios.Select(r => r.Item3)):F2} | " +
                                  $"{ModelSpeed.Median(mine.Select(f => f.OnnxMs)):F3} | {ModelSpeed.Median(ratios.Select(r => r.Item4)):F2} |");
            }
        }
    }

    /// <summary>
    /// One model's scoring figures both ways: batch images/s, PredictionEngine median and p90 milliseconds, the save and
    /// load, and how far the two paths' scores differ.
    /// </summary>
    internal sealed record ScoringFigures(double Torch, double Onnx, double TorchMs, double TorchP90, double OnnxMs, double OnnxP90,
        double SaveSeconds, long ZipBytes, double LoadSeconds, double MaxDifference, int SameLabels);

    /// <summary>Scores a randomly initialised zoo model on <paramref name="rows"/> random images in memory and after Model.Save/Load.</summary>
    internal static ScoringFigures Score(string name, ImageShape shape, int classes, int rows, int calls, int warmup)
    {
        manual_seed(1);
        var classNames = Enumerable.Range(0, classes).Select(i => $"class-{i}").ToArray();
        using var model = XNetModelParameters.Create(name, 1, shape, classNames, LabelKeyValues.Text, Enumerable.Repeat(127f, shape.Channels).ToArray(),
            Enumerable.Repeat(64f, shape.Channels).ToArray(), CPU);
        using var xnet = new XNetTransformer(model, inferenceBatchSize: shape.Size > 10_000 ? 32 : 256);
        var ml = new MLContext(seed: 1);
        var definition = SchemaDefinition.Create(typeof(Row));
        definition[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, shape.Channels, shape.Height, shape.Width);
        var random = new Random(1);
        var data = Enumerable.Range(0, rows).Select(_ => new Row
        {
            Features = Enumerable.Range(0, shape.Size).Select(_ => (float)random.Next(256)).ToArray(),
        }).ToArray();
        var view = ml.Data.LoadFromEnumerable(data, definition);

        string zip = Path.Combine(Path.GetTempPath(), $"xnet-bench-{Guid.NewGuid():N}.zip");
        try
        {
            var save = Stopwatch.StartNew();
            XNetModelFile.SaveMLNet(ml, xnet, zip);
            double saveSeconds = save.Elapsed.TotalSeconds;
            var load = Stopwatch.StartNew();
            var loaded = ml.Model.Load(zip, out _);
            double loadSeconds = load.Elapsed.TotalSeconds;
            try
            {
                var (torchRate, torchScores, torchLabels) = Batch(xnet, view);
                var (onnxRate, onnxScores, onnxLabels) = Batch(loaded, view);
                var (torchMedian, torchP90) = Latency(ml, xnet, data, definition, calls, warmup);
                var (onnxMedian, onnxP90) = Latency(ml, loaded, data, definition, calls, warmup);
                double diff = torchScores.Zip(onnxScores).Max(p => p.First.Zip(p.Second).Max(s => Math.Abs(s.First - s.Second)));
                int same = torchLabels.Zip(onnxLabels).Count(p => p.First == p.Second);
                return new ScoringFigures(torchRate, onnxRate, torchMedian, torchP90, onnxMedian, onnxP90, saveSeconds, new FileInfo(zip).Length,
                    loadSeconds, diff, same);
            }
            finally
            {
                (loaded as IDisposable)?.Dispose();
            }
        }
        finally
        {
            File.Delete(zip);
        }
    }

    private static (double Rate, float[][] Scores, uint[] Labels) Batch(ITransformer model, IDataView view)
    {
        // One untimed pass warms up (JIT, ORT session, allocator), then a timed pass over all rows.
        Read(model.Transform(view));
        var watch = Stopwatch.StartNew();
        var result = Read(model.Transform(view));
        return (result.Scores.Length / watch.Elapsed.TotalSeconds, result.Scores, result.Labels);
    }

    private static (float[][] Scores, uint[] Labels) Read(IDataView scored)
    {
        var scores = new List<float[]>();
        var labels = new List<uint>();
        using var cursor = scored.GetRowCursor(new[] { scored.Schema["Score"], scored.Schema["PredictedLabel"] });
        var scoreGetter = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        var labelGetter = cursor.GetGetter<uint>(scored.Schema["PredictedLabel"]);
        VBuffer<float> score = default;
        uint label = 0;
        while (cursor.MoveNext())
        {
            scoreGetter(ref score);
            labelGetter(ref label);
            scores.Add(score.DenseValues().ToArray());
            labels.Add(label);
        }

        return (scores.ToArray(), labels.ToArray());
    }

    private static (double Median, double P90) Latency(MLContext ml, ITransformer model, Row[] rows, SchemaDefinition definition, int calls, int warmup)
    {
        using var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model,
            new PredictionEngineOptions { OwnsTransformer = false, InputSchemaDefinition = definition });
        for (int i = 0; i < warmup; i++)
        {
            engine.Predict(rows[i % rows.Length]);
        }

        var times = new double[calls];
        for (int i = 0; i < calls; i++)
        {
            long start = Stopwatch.GetTimestamp();
            engine.Predict(rows[i % rows.Length]);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        Array.Sort(times);
        return (times[calls / 2], times[(int)(calls * 0.9)]);
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
    }

    private sealed class Prediction
    {
        public float[] Score { get; set; } = [];

        public uint PredictedLabel { get; set; }
    }
}
