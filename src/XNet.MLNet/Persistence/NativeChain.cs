using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Onnx;

namespace XNet.MLNet.Persistence;

/// <summary>
/// The chain of ML.NET's own transformers an <see cref="XNetTransformer"/> saves itself as (docs/pipelines.md, "Saving"):
/// <list type="number">
/// <item><c>CopyColumns("input", Features)</c>: ML.NET binds ONNX inputs by name;</item>
/// <item><c>ApplyOnnxModel(["Score", "PredictedOneHot"], ["input"])</c> over the exported network (softmax and one-hot
/// argmax inside the graph; the X-Net model file is embedded in its metadata under <see cref="EmbeddedModelKey"/>);</item>
/// <item><c>CopyColumns("XNetOnnxScore", "Score")</c>: keeps the softmax while the next step writes its own Score;</item>
/// <item>a <c>LbfgsMaximumEntropy</c> prediction transformer fitted on the N one-hot vectors (checked exact on all of them)
/// that turns <c>PredictedOneHot</c> into a scalar <c>Key&lt;UInt32, N&gt;</c> PredictedLabel with the class names as
/// KeyValues (onnx-route.md, chain "S"; a scalar straight from ONNX is blocked by dotnet/machinelearning#7225);</item>
/// <item><c>CopyColumns(Score, "XNetOnnxScore")</c> restores the network's softmax as Score, then <c>DropColumns</c>
/// removes the helper columns.</item>
/// </list>
/// The ONNX bytes live in a temporary file this object owns and deletes on <see cref="Dispose"/> (ML.NET's
/// <c>OnnxTransformer</c> re-reads the file at Save, and its Stream overload never deletes its own copy).
/// </summary>
internal sealed class NativeChain : IDisposable
{
    /// <summary>ONNX metadata key of the embedded X-Net model file (base64 of the <c>.xnet</c> zip).</summary>
    public const string EmbeddedModelKey = "xnet.model";

    private const string OnnxScoreColumn = "XNetOnnxScore";
    private const string ClassColumn = "XNetClass";
    private const string MlNetScore = "Score";
    private const string MlNetPredictedLabel = "PredictedLabel";

    private readonly string onnxFile;

    private NativeChain(TransformerChain<ITransformer> chain, string onnxFile)
    {
        Chain = chain;
        this.onnxFile = onnxFile;
    }

    /// <summary>The fitted chain (valid until <see cref="Dispose"/>).</summary>
    public TransformerChain<ITransformer> Chain { get; }

    /// <summary>Builds the chain for <paramref name="transformer"/>.</summary>
    /// <exception cref="NotSupportedException">When the class names repeat (they become key values) or the one-hot mapping is not exact.</exception>
    public static NativeChain Build(XNetTransformer transformer)
    {
        var model = transformer.Model;
        var names = model.ClassNames;
        var duplicate = names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new NotSupportedException(
                $"mlContext.Model.Save cannot store this X-Net: class name '{duplicate.Key}' occurs {duplicate.Count()} times, and the saved " +
                "PredictedLabel needs distinct class names as its key values.");
        }

        var ml = new MLContext(seed: 0);
        string onnxFile = Path.Combine(Path.GetTempPath(), $"xnet-save-{Guid.NewGuid():N}.onnx");
        var transformers = new List<ITransformer>();
        try
        {
            using (var file = new FileStream(onnxFile, FileMode.CreateNew, FileAccess.Write))
            {
                model.ExportOnnx(file, OnnxModelWriter.DefaultExpanderForm, embedModel: true);
            }

            var shape = model.InputShape;
            var featureType = new VectorDataViewType(NumberDataViewType.Single, shape.Channels, shape.Height, shape.Width);
            var featureSchema = SchemaDefinition.Create(typeof(FeatureRow));
            var featureColumn = featureSchema[0];
            featureColumn.ColumnName = transformer.FeatureColumnName;
            featureColumn.ColumnType = featureType;
            IDataView data = ml.Data.LoadFromEnumerable(new[] { new FeatureRow { Features = new float[shape.Size] } }, featureSchema);

            data = Add(transformers, ml.Transforms.CopyColumns(XNetOnnx.Input, transformer.FeatureColumnName), data);
            data = Add(transformers, ml.Transforms.ApplyOnnxModel(
                new[] { XNetOnnx.Score, XNetOnnx.PredictedOneHot }, new[] { XNetOnnx.Input }, onnxFile), data);
            data = Add(transformers, ml.Transforms.CopyColumns(OnnxScoreColumn, XNetOnnx.Score), data);
            transformers.Add(FitOneHotScorer(ml, names));
            data = transformers[^1].Transform(data);
            var drop = new List<string> { XNetOnnx.Input, XNetOnnx.PredictedOneHot, OnnxScoreColumn };
            data = Add(transformers, ml.Transforms.CopyColumns(transformer.ScoreColumnName, OnnxScoreColumn), data);
            if (transformer.ScoreColumnName != MlNetScore)
            {
                drop.Add(MlNetScore);
            }

            if (transformer.PredictedLabelColumnName != MlNetPredictedLabel)
            {
                data = Add(transformers, ml.Transforms.CopyColumns(transformer.PredictedLabelColumnName, MlNetPredictedLabel), data);
                drop.Add(MlNetPredictedLabel);
            }

            Add(transformers, ml.Transforms.DropColumns(drop.ToArray()), data);
            return new NativeChain(new TransformerChain<ITransformer>(transformers.ToArray()), onnxFile);
        }
        catch
        {
            foreach (var t in transformers.OfType<IDisposable>())
            {
                t.Dispose();
            }

            File.Delete(onnxFile);
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Chain.Dispose();
        File.Delete(onnxFile);
    }

    private static IDataView Add<T>(List<ITransformer> transformers, IEstimator<T> estimator, IDataView data)
        where T : ITransformer
    {
        var fitted = estimator.Fit(data);
        transformers.Add(fitted);
        return fitted.Transform(data);
    }

    /// <summary>
    /// A maximum-entropy scorer fitted on the N one-hot vectors, labelled with the class names in key order, and checked
    /// to predict class i for one-hot i on every i: its PredictedLabel is then the argmax the network computed.
    /// </summary>
    private static ITransformer FitOneHotScorer(MLContext ml, IReadOnlyList<string> names)
    {
        int classes = names.Count;
        var rows = Enumerable.Range(0, classes).Select(i =>
        {
            var oneHot = new float[classes];
            oneHot[i] = 1;
            return new OneHotRow { Class = names[i], OneHot = oneHot };
        }).ToArray();
        var schema = SchemaDefinition.Create(typeof(OneHotRow));
        var oneHotColumn = schema[nameof(OneHotRow.OneHot)];
        oneHotColumn.ColumnName = XNetOnnx.PredictedOneHot;
        oneHotColumn.ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, classes);
        schema[nameof(OneHotRow.Class)].ColumnName = ClassColumn;
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        var keyData = ml.Data.LoadFromEnumerable(names.Select(n => new ClassRow { Class = n }));
        var keyed = ml.Transforms.Conversion.MapValueToKey(ClassColumn, ClassColumn, keyData: keyData).Fit(data).Transform(data);
        var scorer = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(
            new Microsoft.ML.Trainers.LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = ClassColumn,
                FeatureColumnName = XNetOnnx.PredictedOneHot,
                // The defaults (L1 = L2 = 1) shrink 1 example per class to nothing; the data is separable, so a light L2 suffices.
                L1Regularization = 0,
                L2Regularization = 1e-4f,
                NumberOfThreads = 1,
            }).Fit(keyed);

        var predicted = scorer.Transform(keyed).GetColumn<uint>(MlNetPredictedLabel).ToArray();
        for (int i = 0; i < classes; i++)
        {
            if (predicted[i] != i + 1)
            {
                throw new NotSupportedException(
                    $"mlContext.Model.Save cannot store this X-Net: the PredictedLabel mapping of one-hot class {i} ('{names[i]}') gave key " +
                    $"{predicted[i]}, expected {i + 1}. Please report it; meanwhile save the network with transformer.Model.Save(\"model.xnet\").");
            }
        }

        return scorer;
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
    }

    private sealed class OneHotRow
    {
        public string Class { get; set; } = "";

        public float[] OneHot { get; set; } = [];
    }

    private sealed class ClassRow
    {
        public string Class { get; set; } = "";
    }
}
