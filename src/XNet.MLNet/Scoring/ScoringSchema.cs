using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Scoring;

/// <summary>
/// The columns an X-Net adds, with the annotations ML.NET's own multiclass scorer emits, so Evaluate,
/// MapKeyToValue and PredictionEngine treat them like any multiclass prediction: Score (Vector&lt;Single, N&gt;,
/// slot names = class names) and PredictedLabel (Key&lt;UInt32, N&gt;, key values = class names).
/// </summary>
internal sealed class ScoringSchema
{
    // ML.NET's annotation kinds (AnnotationUtils.Kinds is internal, so the strings are spelled here).
    private const string SlotNames = "SlotNames";
    private const string KeyValues = "KeyValues";
    private const string ScoreColumnKind = "ScoreColumnKind";
    private const string ScoreValueKind = "ScoreValueKind";

    public ScoringSchema(DataViewSchema input, string scoreColumnName, string predictedLabelColumnName, IReadOnlyList<string> classNames)
    {
        Input = input;
        int classes = classNames.Count;
        var names = new VBuffer<ReadOnlyMemory<char>>(classes, classNames.Select(n => n.AsMemory()).ToArray());
        var namesType = new VectorDataViewType(TextDataViewType.Instance, classes);

        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(scoreColumnName, new VectorDataViewType(NumberDataViewType.Single, classes),
            Annotations(SlotNames, names, namesType, "Score"));
        builder.AddColumn(predictedLabelColumnName, new KeyDataViewType(typeof(uint), classes),
            Annotations(KeyValues, names, namesType, "PredictedLabel"));
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

    private static DataViewSchema.Annotations Annotations(string namesKind, VBuffer<ReadOnlyMemory<char>> names,
        VectorDataViewType namesType, string valueKind)
    {
        var annotations = new DataViewSchema.Annotations.Builder();
        annotations.Add(namesKind, namesType, (ref VBuffer<ReadOnlyMemory<char>> value) => names.CopyTo(ref value));
        annotations.Add(ScoreColumnKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> value) => value = "MulticlassClassification".AsMemory());
        annotations.Add(ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = valueKind.AsMemory());
        return annotations.ToAnnotations();
    }
}
