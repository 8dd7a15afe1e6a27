using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using XNet.MLNet.Data;
using XNet.MLNet.Onnx;

namespace XNet.MLNet.Persistence;

/// <summary>
/// The chain of ML.NET's own transformers an <see cref="XNetTransformer"/> saves itself as (docs/pipelines.md, "Saving"):
/// <list type="number">
/// <item><c>CopyColumns("input", Features)</c>: ML.NET binds ONNX inputs by name;</item>
/// <item><c>ApplyOnnxModel(["XNetScorerInput"], ["input"])</c> over the exported network, whose extra head maps the
/// logits z to x = A z + c (the X-Net model file is embedded in its metadata under <see cref="EmbeddedModelKey"/>);</item>
/// <item>ML.NET's own multiclass scorer: a <c>LbfgsMaximumEntropy</c> prediction transformer fitted on the N one-hot
/// vectors labelled with the label's values. It computes softmax(W x + b); A and c are solved from its fitted W and b
/// so that W x + b = z + t for some constant t, so its Score is the network's softmax (checked within 1e-5 at Save) and its
/// PredictedLabel the argmax, a scalar <c>Key&lt;UInt32, N&gt;</c> whose key values are the label's own values in their own
/// type, with ML.NET's annotations (slot names for text labels, TrainingLabelValues). A scalar key straight from ONNX is
/// blocked by dotnet/machinelearning#7225, and no public ML.NET transform attaches slot names to a column;</item>
/// <item><c>CopyColumns</c> to the X-Net's own output names where they differ, then <c>DropColumns</c> of the helper columns.</item>
/// </list>
/// The ONNX bytes live in a temporary file this object owns and deletes on <see cref="Dispose"/> (ML.NET's
/// <c>OnnxTransformer</c> re-reads the file at Save, and its Stream overload never deletes its own copy).
/// </summary>
internal sealed class MlNetChain : IDisposable
{
    /// <summary>ONNX metadata key of the embedded X-Net model file (base64 of the <c>.xnet</c> zip).</summary>
    public const string EmbeddedModelKey = "xnet.model";

    private const string ScorerInputColumn = "XNetScorerInput";
    private const string ClassColumn = "XNetClass";
    private const string MlNetScore = "Score";
    private const string MlNetPredictedLabel = "PredictedLabel";

    private readonly string onnxFile;

    private MlNetChain(TransformerChain<ITransformer> chain, string onnxFile)
    {
        Chain = chain;
        this.onnxFile = onnxFile;
    }

    /// <summary>The fitted chain (valid until <see cref="Dispose"/>).</summary>
    public TransformerChain<ITransformer> Chain { get; }

    /// <summary>Builds the chain for <paramref name="transformer"/>.</summary>
    /// <exception cref="NotSupportedException">When the class names repeat (they become key values) or ML.NET's scorer does not reproduce the softmax.</exception>
    public static MlNetChain Build(XNetTransformer transformer)
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
        var (scorer, head) = FitScorer(ml, model);
        string onnxFile = Path.Combine(Path.GetTempPath(), $"xnet-save-{Guid.NewGuid():N}.onnx");
        var transformers = new List<ITransformer>();
        try
        {
            using (var file = new FileStream(onnxFile, FileMode.CreateNew, FileAccess.Write))
            {
                model.ExportOnnx(file, OnnxModelWriter.DefaultExpanderForm, embedModel: true, head);
            }

            var shape = model.InputShape;
            var featureType = new VectorDataViewType(NumberDataViewType.Single, shape.Channels, shape.Height, shape.Width);
            var featureSchema = SchemaDefinition.Create(typeof(FeatureRow));
            var featureColumn = featureSchema[0];
            featureColumn.ColumnName = transformer.FeatureColumnName;
            featureColumn.ColumnType = featureType;
            IDataView data = ml.Data.LoadFromEnumerable(new[] { new FeatureRow { Features = new float[shape.Size] } }, featureSchema);

            data = Add(transformers, ml.Transforms.CopyColumns(XNetOnnx.Input, transformer.FeatureColumnName), data);
            data = Add(transformers, ml.Transforms.ApplyOnnxModel(new[] { ScorerInputColumn }, new[] { XNetOnnx.Input }, onnxFile), data);
            transformers.Add(scorer);
            data = scorer.Transform(data);
            var drop = new List<string> { XNetOnnx.Input, ScorerInputColumn };
            foreach (var (own, mlNet) in new[] { (transformer.ScoreColumnName, MlNetScore), (transformer.PredictedLabelColumnName, MlNetPredictedLabel) })
            {
                if (own != mlNet)
                {
                    data = Add(transformers, ml.Transforms.CopyColumns(own, mlNet), data);
                    drop.Add(mlNet);
                }
            }

            Add(transformers, ml.Transforms.DropColumns(drop.ToArray()), data);
            return new MlNetChain(new TransformerChain<ITransformer>(transformers.ToArray()), onnxFile);
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
    /// ML.NET's maximum-entropy scorer fitted on the N one-hot vectors (labelled with the label's values, key i + 1 for
    /// class i), and the ONNX head that feeds it: A and c with W (A z + c) + b = z + t·1 and sum(A z + c) = 0 for every
    /// logit vector z, solved in double from the fitted W and b. Softmax ignores t, so the scorer gives softmax(z).
    /// </summary>
    private static (ITransformer Scorer, AffineHead Head) FitScorer(MLContext ml, XNetModelParameters model)
    {
        var names = model.ClassNames;
        int classes = names.Count;
        var featureType = new VectorDataViewType(NumberDataViewType.Single, 1, classes);   // as OnnxTransformer types a (batch, N) output
        var rows = LabelKeyValues.OneHotRows(ml, model.LabelValueTypeName, names, ClassColumn, ScorerInputColumn, featureType);
        var keyData = ml.Transforms.SelectColumns(ClassColumn).Fit(rows).Transform(rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey(ClassColumn, ClassColumn, keyData: keyData).Fit(rows).Transform(rows);
        var scorer = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = ClassColumn,
            FeatureColumnName = ScorerInputColumn,
            // The defaults (L1 = L2 = 1) shrink 1 example per class to nothing; a light L2 keeps W well conditioned.
            L1Regularization = 0,
            L2Regularization = 1e-2f,
            NumberOfThreads = 1,
        }).Fit(keyed);

        VBuffer<float>[] weights = default!;
        scorer.Model.GetWeights(ref weights, out _);
        var bias = scorer.Model.GetBiases().ToArray();
        var head = SolveHead(weights, bias, classes);
        CheckSoftmax(ml, scorer, head, featureType, names);
        return (scorer, head);
    }

    /// <summary>
    /// A and c from W (rows: classes) and b: the inverse M^-1 of [[W, -1], [1^T, 0]] gives (x, t) = M^-1 (z - b, 0), so
    /// A is its top-left N x N block and c = -A b.
    /// </summary>
    private static AffineHead SolveHead(VBuffer<float>[] weights, float[] bias, int classes)
    {
        int n = classes + 1;
        var m = new double[n, 2 * n];
        for (int c = 0; c < classes; c++)
        {
            int j = 0;
            foreach (float w in weights[c].DenseValues())
            {
                m[c, j++] = w;
            }

            m[c, classes] = -1;
            m[classes, c] = 1;
        }

        for (int i = 0; i < n; i++)
        {
            m[i, n + i] = 1;
        }

        // Gauss-Jordan with partial pivoting.
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < n; r++)
            {
                if (Math.Abs(m[r, col]) > Math.Abs(m[pivot, col]))
                {
                    pivot = r;
                }
            }

            if (Math.Abs(m[pivot, col]) < 1e-12)
            {
                throw new NotSupportedException(
                    "mlContext.Model.Save cannot store this X-Net: ML.NET's scorer fitted a singular weight matrix. Please report it; meanwhile " +
                    "save the network with XNetModelFile.Save(transformer.Model, \"model.xnet\") or export it with ExportOnnx.");
            }

            for (int j = 0; j < 2 * n; j++)
            {
                (m[col, j], m[pivot, j]) = (m[pivot, j], m[col, j]);
            }

            double d = m[col, col];
            for (int j = 0; j < 2 * n; j++)
            {
                m[col, j] /= d;
            }

            for (int r = 0; r < n; r++)
            {
                double f = m[r, col];
                if (r != col && f != 0)
                {
                    for (int j = 0; j < 2 * n; j++)
                    {
                        m[r, j] -= f * m[col, j];
                    }
                }
            }
        }

        var transposed = new float[classes * classes];
        var offset = new float[classes];
        for (int i = 0; i < classes; i++)
        {
            double acc = 0;
            for (int j = 0; j < classes; j++)
            {
                double a = m[i, n + j];
                transposed[j * classes + i] = (float)a;
                acc -= a * bias[j];
            }

            offset[i] = (float)acc;
        }

        return new AffineHead(ScorerInputColumn, transposed, offset);
    }

    /// <summary>
    /// Runs the scorer on the head's output for probe logit vectors (each class ahead by 10, and seeded random ones) and
    /// checks softmax and argmax.
    /// </summary>
    private static void CheckSoftmax(MLContext ml, ITransformer scorer, AffineHead head, VectorDataViewType featureType, IReadOnlyList<string> names)
    {
        int classes = names.Count;
        var random = new Random(0);
        var logits = Enumerable.Range(0, classes).Select(i => Enumerable.Range(0, classes).Select(k => k == i ? 10f : 0f).ToArray())
            .Concat(Enumerable.Range(0, 16).Select(_ => Enumerable.Range(0, classes).Select(_ => (float)(random.NextDouble() * 30 - 15)).ToArray()))
            .ToArray();
        var inputs = logits.Select(z =>
        {
            var x = new float[classes];
            for (int i = 0; i < classes; i++)
            {
                float acc = head.Bias[i];
                for (int j = 0; j < classes; j++)
                {
                    acc += z[j] * head.WeightsTransposed[j * classes + i];
                }

                x[i] = acc;
            }

            return new FeatureRow { Features = x };
        });
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[0].ColumnName = ScorerInputColumn;
        schema[0].ColumnType = featureType;
        var scored = scorer.Transform(ml.Data.LoadFromEnumerable(inputs, schema));
        var scores = scored.GetColumn<float[]>(MlNetScore).ToArray();
        var keys = scored.GetColumn<uint>(MlNetPredictedLabel).ToArray();
        for (int r = 0; r < logits.Length; r++)
        {
            var z = logits[r];
            float max = z.Max();
            double sum = z.Sum(v => Math.Exp(v - max));
            int argmax = Array.IndexOf(z, max);
            double error = Enumerable.Range(0, classes).Max(i => Math.Abs(scores[r][i] - Math.Exp(z[i] - max) / sum));
            if (error > 1e-5 || (r < classes && keys[r] != argmax + 1))
            {
                throw new NotSupportedException(
                    $"mlContext.Model.Save cannot store this X-Net: ML.NET's scorer reproduced the softmax of probe {r} within {error:E1} " +
                    $"(expected 1e-5) and predicted key {keys[r]} (expected {argmax + 1}). Please report it; meanwhile save the network with " +
                    "XNetModelFile.Save(transformer.Model, \"model.xnet\") or export it with ExportOnnx.");
            }
        }
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
    }
}
