using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet.Data;

namespace XNet.MLNet.Scoring;

/// <summary>
/// The columns an X-Net adds, with the annotations ML.NET's own multiclass scorer emits, so Evaluate, MapKeyToValue and
/// PredictionEngine treat them like any multiclass prediction: Score (Vector&lt;Single, N&gt;, with the label's values as
/// TrainingLabelValues, and as slot names when they are text) and PredictedLabel (Key&lt;UInt32, N&gt;, key values = the
/// label's key values in their own type).
/// </summary>
internal sealed class ScoringSchema
{
    // ML.NET's annotation kinds (AnnotationUtils.Kinds is internal, so the strings are spelled here).
    private const string SlotNames = "SlotNames";
    private const string TrainingLabelValues = "TrainingLabelValues";
    private const string ScoreColumnKind = "ScoreColumnKind";
    private const string ScoreValueKind = "ScoreValueKind";

    public ScoringSchema(DataViewSchema input, string scoreColumnName, string predictedLabelColumnName, IReadOnlyList<string> classNames,
        string labelValueType)
    {
        Input = input;
        int classes = classNames.Count;

        var score = ScoreKinds("Score");
        LabelKeyValues.AddValues(score, TrainingLabelValues, labelValueType, classNames);
        if (labelValueType == LabelKeyValues.Text)
        {
            LabelKeyValues.AddValues(score, SlotNames, labelValueType, classNames);
        }

        var predictedLabel = ScoreKinds("PredictedLabel");
        LabelKeyValues.AddKeyValues(predictedLabel, labelValueType, classNames);

        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(scoreColumnName, new VectorDataViewType(NumberDataViewType.Single, classes), score.ToAnnotations());
        builder.AddColumn(predictedLabelColumnName, new KeyDataViewType(typeof(uint), classes), predictedLabel.ToAnnotations());
        Output = builder.ToSchema();
        ScoreIndex = input.Count;
        PredictedLabelIndex = input.Count + 1;
    }

    public DataViewSchema Input { get; }

    public DataViewSchema Output { get; }

    public int ScoreIndex { get; }

    public int PredictedLabelIndex { get; }

    /// <summary>Whether the column belongs to the input (passed through) rather than to the scores.</summary>
    public bool IsInput(DataViewSchema.Column column) => column.Index < Input.Count;

    private static DataViewSchema.Annotations.Builder ScoreKinds(string valueKind)
    {
        var annotations = new DataViewSchema.Annotations.Builder();
        annotations.Add(ScoreColumnKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> value) => value = "MulticlassClassification".AsMemory());
        annotations.Add(ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = valueKind.AsMemory());
        return annotations;
    }
}
