using System.Runtime.CompilerServices;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using XNet.MLNet;

namespace Microsoft.ML;

/// <summary>
/// <c>mlContext.MulticlassClassification.Trainers.XNet(...)</c>: Deep Expander Networks as an ML.NET multiclass trainer.
/// In the <c>Microsoft.ML</c> namespace, as ML.NET's own extension packages do, so <c>using Microsoft.ML;</c> finds it.
/// </summary>
public static class XNetCatalog
{
    /// <summary>Creates an X-Net trainer from full options.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">Architecture, optimiser, schedule, validation, device and column names.</param>
    public static XNetTrainer XNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, XNetTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new XNetTrainer(EnvironmentOf(catalog), options);
    }

    /// <summary>Creates an X-Net trainer with the common settings.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Key-typed label column.</param>
    /// <param name="featureColumnName">Known-size Single vector of C*H*W raw pixels.</param>
    /// <param name="scoreColumnName">Output column of class probabilities.</param>
    /// <param name="predictedLabelColumnName">Output column of the predicted class.</param>
    /// <param name="architecture">Zoo name, for example <c>x-resnet-20-4</c>.</param>
    /// <param name="epoch">Passes over the training data.</param>
    /// <param name="batchSize">Images per optimiser step.</param>
    /// <param name="learningRate">Base learning rate of SGD.</param>
    /// <param name="validationSet">Optional validation data, evaluated each epoch.</param>
    public static XNetTrainer XNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel", string architecture = XNetTrainer.Defaults.Architecture,
        int epoch = XNetTrainer.Defaults.Epoch, int batchSize = XNetTrainer.Defaults.BatchSize,
        float learningRate = XNetTrainer.Defaults.LearningRate, IDataView? validationSet = null) =>
        catalog.XNet(new XNetTrainer.Options
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            ScoreColumnName = scoreColumnName,
            PredictedLabelColumnName = predictedLabelColumnName,
            Architecture = architecture,
            Epoch = epoch,
            BatchSize = batchSize,
            LearningRate = learningRate,
            ValidationSet = validationSet,
        });

    /// <summary>
    /// The MLContext's environment behind a catalog, so training logs reach <c>mlContext.Log</c> and the context's seed
    /// applies. ML.NET exposes it only to its own packages (an explicit implementation of the internal
    /// IInternalCatalog); if a future ML.NET renames it, a fresh environment is used instead.
    /// </summary>
    private static IHostEnvironment EnvironmentOf(TrainCatalogBase.CatalogInstantiatorBase catalog)
    {
        try
        {
            return CatalogEnvironment(catalog);
        }
        catch (MissingMethodException)
        {
            return new MLContext();
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "Microsoft.ML.Data.IInternalCatalog.get_Environment")]
    private static extern IHostEnvironment CatalogEnvironment(TrainCatalogBase.CatalogInstantiatorBase catalog);
}
