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
    }

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
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Bind(inputSchema).Schema.Output;

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">When called by <c>mlContext.Model.ConvertToOnnx</c>, which cannot convert an X-Net (use <see cref="XNetModelFile.ExportOnnx(XNetModelParameters, string)"/>).</exception>
    public IDataView Transform(IDataView input)
    {
        OnnxConverterGuard.ThrowIfConverting();
        var (schema, features) = Bind(input.Schema);
        return new ScoredDataView(input, schema, Model, features, InferenceBatchSize);
    }

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        var (schema, features) = Bind(inputSchema);
        return new ScoringRowMapper(schema, Model, features);
    }

    /// <summary>
    /// Saves the X-Net as a chain of ML.NET's own transformers (CopyColumns, ApplyOnnxModel over the exported network,
    /// ML.NET's maximum-entropy scorer fed so that it reproduces the softmax, DropColumns; see docs/pipelines.md), so
    /// <c>mlContext.Model.Save</c> stores any pipeline that contains it and <c>mlContext.Model.Load</c> needs only
    /// Microsoft.ML, Microsoft.ML.OnnxTransformer and Microsoft.ML.OnnxRuntime. The loaded chain gives the same Score
    /// (within 1e-5) with the same annotations, and a scalar key PredictedLabel with the label's own key values. The X-Net model file itself travels inside the ONNX metadata,
    /// so <see cref="XNetTrainer.Options.InitialModel"/> and <see cref="XNetModelFile"/> can read it back.
    /// </summary>
    /// <exception cref="NotSupportedException">When a layer has no ONNX export or class names repeat; the message says which.</exception>
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
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
}
