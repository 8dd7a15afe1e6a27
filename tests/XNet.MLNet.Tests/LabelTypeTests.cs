using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;

namespace XNet.MLNet.Tests;

/// <summary>
/// Labels keep their own type, as with every ML.NET multiclass trainer: MapValueToKey("Label") -> XNet ->
/// MapKeyToValue("PredictedLabel") gives back the label's values in a typed PredictionEngine, in memory and after
/// Model.Load in a process without X-Net (tests/XNet.Persistence.Probe); Score has the class names as slot names when
/// the labels are text, and TrainingLabelValues in the label's type.
/// </summary>
[TestClass]
public sealed class LabelTypeTests
{
    private static readonly MLContext Context = new(seed: 1);

    [TestMethod]
    public void UIntLabelsRoundTrip() => RoundTrip(i => 100u + 7u * (uint)i, uint.Parse);

    [TestMethod]
    public void IntLabelsRoundTrip() => RoundTrip(i => i - 5, int.Parse);

    [TestMethod]
    public void StringLabelsRoundTrip() => RoundTrip(i => FashionMnist.ClassNames[i], s => s);

    [TestMethod]
    public void BoolLabelsRoundTrip() => RoundTrip(i => i >= 5, bool.Parse);

    [TestMethod]
    public void TimeSpanLabelsRoundTrip() =>
        RoundTrip(i => TimeSpan.FromMinutes(90 * i - 200), s => TimeSpan.ParseExact(s, "c", CultureInfo.InvariantCulture));

    [TestMethod]
    public void DateTimeOffsetLabelsRoundTrip() =>
        RoundTrip(i => new DateTimeOffset(2021, 3, 1 + i, 12, 0, 0, TimeSpan.FromHours(i - 4)),
            s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind));

    [TestMethod]
    public void DateTimeLabelsRoundTrip() =>
        RoundTrip(i => new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddDays(-37 * i), s => DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind));

    [TestMethod]
    public void AKeyLabelWithoutKeyValuesGetsItsKeysBack()
    {
        var keyed = TestData.Take(Context, "train", 90);
        var rows = Context.Data.CreateEnumerable<KeyedRow>(keyed, reuseRowObject: false)
            .Select(r => new ThreeKeys { Label = (r.Label - 1) % 3 + 1, Features = r.Features })
            .ToArray();
        var data = Context.Data.LoadFromEnumerable(rows);
        using var model = Context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions(epochs: 1)).Fit(data);
        Assert.AreEqual("1|2|3", string.Join("|", model.Model.ClassNames));
        var scored = model.Transform(data);
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        var values = Context.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored).Transform(scored).GetColumn<uint>("PredictedLabel").ToArray();
        CollectionAssert.AreEqual(keys, values, "MapKeyToValue gives back the key a [KeyType(3)] column holds");
    }

    private static void RoundTrip<T>(Func<int, T> valueOfClass, Func<string, T> parse)
        where T : notnull
    {
        var keyed = TestData.Take(Context, "train", 160);
        var rows = Context.Data.CreateEnumerable<KeyedRow>(keyed, reuseRowObject: false)
            .Select(r => new Row<T> { Label = valueOfClass((int)r.Label - 1), Features = r.Features })
            .ToArray();
        var data = Context.Data.LoadFromEnumerable(rows);
        var labelValues = rows.Select(r => r.Label).Distinct().ToHashSet();

        var pipeline = Context.Transforms.Conversion.MapValueToKey("Label")
            .Append(Context.MulticlassClassification.Trainers.XNet(TestData.SmallOptions(epochs: 1)))
            .Append(Context.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(data);
        string folder = Path.Combine(Path.GetTempPath(), $"xnet-labels-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var scored = model.Transform(data);
            Assert.AreEqual(RawType<T>(), scored.Schema["PredictedLabel"].Type.RawType);
            string classNames = KeyValueText<T>(scored.Schema["Label"]);
            CheckScoreAnnotations<T>(scored.Schema["Score"], classNames);

            using var engine = Context.Model.CreatePredictionEngine<Row<T>, Prediction<T>>(model);
            var predicted = rows.Select(r => engine.Predict(r).PredictedLabel).ToArray();
            CollectionAssert.AreEqual(scored.GetColumn<T>("PredictedLabel").ToArray(), predicted);
            Assert.IsTrue(predicted.All(labelValues.Contains), string.Join(", ", predicted.Distinct()));

            string zip = Path.Combine(folder, "model.zip");
            Context.Model.Save(model, data.Schema, zip);
            var loaded = Context.Model.Load(zip, out var inputSchema);
            var loadedSchema = loaded.GetOutputSchema(inputSchema);
            Assert.AreEqual(RawType<T>(), loadedSchema["PredictedLabel"].Type.RawType);
            CheckScoreAnnotations<T>(loadedSchema["Score"], classNames);
            (loaded as IDisposable)?.Dispose();

            var probe = MlNetPersistenceTests.RunProbe(zip, WriteRows(folder, rows), typed: true);
            Assert.AreEqual(typeof(T) == typeof(string) ? "String" : typeof(T).Name, probe.Single(l => l[0] == "typed")[1]);
            string slotNames = probe.Single(l => l[0] == "slot-names").ElementAtOrDefault(1) ?? "";
            Assert.AreEqual(typeof(T) == typeof(string) ? classNames : "", slotNames);
            var values = probe.Where(l => l[0] == "value").Select(l => parse(l[2])).ToArray();
            CollectionAssert.AreEqual(predicted, values);
        }
        finally
        {
            model.Dispose();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void CheckScoreAnnotations<T>(DataViewSchema.Column score, string classNames)
    {
        var trainingValues = score.Annotations.Schema.GetColumnOrNull("TrainingLabelValues");
        Assert.IsNotNull(trainingValues);
        Assert.AreEqual(RawType<T>(), ((VectorDataViewType)trainingValues.Value.Type).ItemType.RawType);
        Assert.AreEqual(typeof(T) == typeof(string), score.HasSlotNames());
        if (typeof(T) == typeof(string))
        {
            var names = new VBuffer<ReadOnlyMemory<char>>();
            score.GetSlotNames(ref names);
            Assert.AreEqual(classNames, string.Join("|", names.DenseValues()));
        }
    }

    private static string KeyValueText<T>(DataViewSchema.Column key)
    {
        Assert.AreEqual(RawType<T>(), ((VectorDataViewType)key.Annotations.Schema["KeyValues"].Type).ItemType.RawType);
        return typeof(T) == typeof(string) ? Join<ReadOnlyMemory<char>>(key) : Join<T>(key);
    }

    private static string Join<TValue>(DataViewSchema.Column key)
    {
        var values = new VBuffer<TValue>();
        key.GetKeyValues(ref values);
        return string.Join("|", values.DenseValues());
    }

    // ML.NET holds text as ReadOnlyMemory<char> and converts to string at the PredictionEngine boundary.
    private static Type RawType<T>() => typeof(T) == typeof(string) ? typeof(ReadOnlyMemory<char>) : typeof(T);

    private static string WriteRows<T>(string folder, IEnumerable<Row<T>> rows)
    {
        string path = Path.Combine(folder, "rows.tsv");
        File.WriteAllLines(path, new[] { "features\t784" }.Concat(rows.Select(r =>
            r.Label switch
            {
                DateTime time => time.ToString("O", CultureInfo.InvariantCulture),
                DateTimeOffset time => time.ToString("O", CultureInfo.InvariantCulture),
                TimeSpan span => span.ToString("c", CultureInfo.InvariantCulture),
                var value => Convert.ToString(value, CultureInfo.InvariantCulture),
            } + "\t" +
            string.Join(",", r.Features.Select(v => v.ToString("R", CultureInfo.InvariantCulture))))));
        return path;
    }

    private sealed class KeyedRow
    {
        public uint Label { get; set; }

        [VectorType(1, 28, 28)]
        public float[] Features { get; set; } = [];
    }

    private sealed class ThreeKeys
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(1, 28, 28)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Row<T>
    {
        public T Label { get; set; } = default!;

        [VectorType(1, 28, 28)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Prediction<T>
    {
        public T PredictedLabel { get; set; } = default!;

        public float[] Score { get; set; } = [];
    }
}
