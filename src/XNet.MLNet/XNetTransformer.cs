using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;
using XNet.MLNet.Onnx;
using XNet.MLNet.Persistence;
using XNet.MLNet.Scoring;
using XNet.MLNet.Training;

namespace XNet.MLNet;

/// <summary>
/// A trained X-Net as an ML.NET transformer: appends <c>Score</c> (class probabilities, one slot per class, slot names
/// from the label's key values) and <c>PredictedLabel</c> (key type of the label, with its key values), so
/// <c>MulticlassClassification.Evaluate</c>, <c>MapKeyToValue</c> and <c>PredictionEngine</c> work as with any ML.NET
/// multiclass trainer. <see cref="Transform"/> is lazy and scores in batches.
/// </summary>
public sealed class XNetTransformer : ISingleFeaturePredictionTransformer<XNetModelParameters>, IDisposable
{
    /// <summary>Wraps a trained model.</summary>
    /// <param name="model">The trained network and its metadata; owned (and disposed) by the transformer.</param>
    /// <param name="featureColumnName">Input column of raw channels-first pixels.</param>
    /// <param name="scoreColumnName">Output column of class probabilities.</param>
    /// <param name="predictedLabelColumnName">Output column of the predicted class.</param>
    /// <param name="inferenceBatchSize">Rows per forward pass in <see cref="Transform"/>.</param>
    public XNetTransformer(XNetModelParameters model, string featureColumnName = "Features", string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel", int inferenceBatchSize = 256)
        : this(model, featureColumnName, scoreColumnName, predictedLabelColumnName, inferenceBatchSize, imageInput: null)
    {
    }

    /// <summary>
    /// A transformer whose feature column holds images (decoded or encoded) when <paramref name="imageInput"/> is set: its
    /// transforms turn them into
    /// <see cref="ImageColumn.PixelColumn"/> for a transformer of pixels, whose output then drops that column again.
    /// </summary>
    internal XNetTransformer(XNetModelParameters model, string featureColumnName, string scoreColumnName, string predictedLabelColumnName,
        int inferenceBatchSize, (ITransformer ToPixels, DataViewType ImageType)? imageInput)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(inferenceBatchSize, 1);
        Model = model;
        FeatureColumnName = featureColumnName;
        ScoreColumnName = scoreColumnName;
        PredictedLabelColumnName = predictedLabelColumnName;
        InferenceBatchSize = inferenceBatchSize;
        FeatureColumnType = new VectorDataViewType(NumberDataViewType.Single,
            model.InputShape.Channels, model.InputShape.Height, model.InputShape.Width);
        if (imageInput is var (toPixels, imageType))
        {
            var ml = new MLContext();
            var scorer = new XNetTransformer(model, ImageColumn.PixelColumn, scoreColumnName, predictedLabelColumnName, inferenceBatchSize);
            var pixelsOnly = SchemaDefinition.Create(typeof(PixelPlaceholder));
            pixelsOnly[0].ColumnName = ImageColumn.PixelColumn;
            var drop = ml.Transforms.DropColumns(ImageColumn.PixelColumn).Fit(ml.Data.LoadFromEnumerable(Array.Empty<PixelPlaceholder>(), pixelsOnly));
            imageChain = new TransformerChain<ITransformer>(toPixels, scorer, drop);
            FeatureColumnType = imageType;
        }
    }

    private readonly TransformerChain<ITransformer>? imageChain;

    /// <inheritdoc />
    public XNetModelParameters Model { get; }

    /// <inheritdoc />
    public string FeatureColumnName { get; }

    /// <inheritdoc />
    public DataViewType FeatureColumnType { get; }

    /// <summary>Output column of class probabilities.</summary>
    public string ScoreColumnName { get; }

    /// <summary>Output column of the predicted class.</summary>
    public string PredictedLabelColumnName { get; }

    /// <summary>Rows per forward pass in <see cref="Transform"/>.</summary>
    public int InferenceBatchSize { get; }

    /// <summary>
    /// The metrics of every epoch of the training that produced this transformer (train and validation loss and
    /// accuracy, learning rate, throughput), with the best validation epoch, the epoch whose weights the model holds and
    /// whether early stopping ended it; null for a transformer made from a saved model.
    /// </summary>
    public TrainingHistory? TrainingHistory { get; internal init; }

    /// <inheritdoc />
    public bool IsRowToRowMapper => true;


    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => imageChain?.GetOutputSchema(inputSchema) ?? Bind(inputSchema).Schema.Output;

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">When called by <c>mlContext.Model.ConvertToOnnx</c>, which cannot convert an X-Net (use <see cref="XNetModelFile.ExportOnnx(XNetModelParameters, string)"/>).</exception>
    public IDataView Transform(IDataView input)
    {
        OnnxConverterGuard.ThrowIfConverting();
        if (imageChain is not null)
        {
            return imageChain.Transform(input);
        }

        var (schema, features) = Bind(input.Schema);
        return new ScoredDataView(input, schema, Model, features, InferenceBatchSize);
    }

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        if (imageChain is not null)
        {
            return ((ITransformer)imageChain).GetRowToRowMapper(inputSchema);
        }

        var (schema, features) = Bind(inputSchema);
        return new ScoringRowMapper(schema, Model, features);
    }

    /// <summary>
    /// Saves the X-Net as a chain of ML.NET's own transformers (CopyColumns, ApplyOnnxModel over the exported network,
    /// ML.NET's maximum-entropy scorer fed so that it reproduces the softmax, DropColumns; see docs/pipelines.md), so
    /// <c>mlContext.Model.Save</c> stores any pipeline that contains it and <c>mlContext.Model.Load</c> needs only
    /// Microsoft.ML, Microsoft.ML.OnnxTransformer and Microsoft.ML.OnnxRuntime. The loaded chain gives the same Score
    /// (within 1e-5) with the same annotations, and a scalar key PredictedLabel with the label's own key values. The X-Net model file itself travels inside the ONNX metadata,
    /// so <see cref="XNetTrainer.Options.InitialModel"/> and <see cref="XNetModelFile"/> can read it back. A transformer
    /// of images saves ML.NET's image transforms before that chain; one of encoded bytes (<c>LoadRawImageBytes</c>) also
    /// saves its decoding step, a custom mapping of this library, so the application that loads it registers this
    /// assembly first: <c>mlContext.ComponentCatalog.RegisterAssembly(typeof(XNetTrainer).Assembly)</c>.
    /// </summary>
    /// <exception cref="NotSupportedException">When a layer has no ONNX export or class names repeat; the message says which.</exception>
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (imageChain is not null)
        {
            // Image transforms, then this transformer's pixel form; encoded bytes load where XNetTrainer's assembly is registered.
            ((ICanSaveModel)imageChain).Save(ctx);
            return;
        }

        using var chain = MlNetChain.Build(this);
        ((ICanSaveModel)chain.Chain).Save(ctx);
    }

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();

    private (ScoringSchema Schema, DataViewSchema.Column Features) Bind(DataViewSchema inputSchema)
    {
        DataViewImages.ResolveShape(inputSchema, FeatureColumnName, Model.InputShape);
        var schema = new ScoringSchema(inputSchema, ScoreColumnName, PredictedLabelColumnName, Model.ClassNames, Model.LabelValueTypeName);
        return (schema, inputSchema[FeatureColumnName]);
    }

    /// <summary>A schema with the pixel column alone, which DropColumns is fitted on.</summary>
    private sealed class PixelPlaceholder
    {
        public float Pixels { get; set; }
    }
}
