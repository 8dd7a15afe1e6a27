using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Scoring;

/// <summary>
/// Getters of a scored row: input columns come from the input row, Score and PredictedLabel from the class
/// probabilities of the current row. Shared by the batched cursor and the single-row mapper.
/// </summary>
internal sealed class ScoredRowValues
{
    public delegate ReadOnlySpan<float> ProbabilitiesOfCurrentRow();

    private readonly ScoringSchema schema;
    private readonly DataViewRow input;
    private readonly ProbabilitiesOfCurrentRow probabilities;

    public ScoredRowValues(ScoringSchema schema, DataViewRow input, ProbabilitiesOfCurrentRow probabilities)
    {
        this.schema = schema;
        this.input = input;
        this.probabilities = probabilities;
    }

    public ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (schema.IsInput(column))
        {
            return input.GetGetter<TValue>(schema.Input[column.Index]);
        }

        Delegate getter = column.Index == schema.ScoreIndex
            ? (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
            {
                var p = probabilities();
                var editor = VBufferEditor.Create(ref value, p.Length);
                p.CopyTo(editor.Values);
                value = editor.Commit();
            })
            : (ValueGetter<uint>)((ref uint value) => value = (uint)ArgMax(probabilities()) + 1);
        return getter as ValueGetter<TValue>
            ?? throw new InvalidOperationException(
                $"Column '{column.Name}' has type {column.Type}; a getter of {typeof(TValue).Name} was requested.");
    }

    /// <summary>The first index of the largest value (ties go to the first class, as ML.NET's scorer).</summary>
    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
