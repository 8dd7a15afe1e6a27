using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Scoring;

/// <summary>
/// The lazy result of <see cref="XNetTransformer.Transform"/>: the input's columns plus Score and PredictedLabel,
/// computed a batch at a time. A second cursor over the feature column runs ahead by one batch; both see the input in
/// its stored order, so their rows line up.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly IDataView input;
    private readonly ScoringSchema schema;
    private readonly XNetModelParameters model;
    private readonly DataViewSchema.Column features;
    private readonly int batchSize;

    public ScoredDataView(IDataView input, ScoringSchema schema, XNetModelParameters model, DataViewSchema.Column features, int batchSize)
    {
        this.input = input;
        this.schema = schema;
        this.model = model;
        this.features = features;
        this.batchSize = batchSize;
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema => schema.Output;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.ToArray();
        bool scores = needed.Any(c => !schema.IsInput(c));
        var inputColumns = needed.Where(schema.IsInput).Select(c => input.Schema[c.Index]);
        var inputCursor = input.GetRowCursor(inputColumns);
        var featureCursor = scores ? input.GetRowCursor(new[] { features }) : null;
        return new Cursor(this, inputCursor, featureCursor);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView view;
        private readonly DataViewRowCursor input;
        private readonly DataViewRowCursor? featureCursor;
        private readonly ValueGetter<VBuffer<float>>? getFeatures;
        private readonly ScoredRowValues values;
        private readonly float[] pixels;
        private readonly float[] probabilities;
        private VBuffer<float> vector;
        private int rowsInBatch;
        private int rowInBatch;

        public Cursor(ScoredDataView view, DataViewRowCursor input, DataViewRowCursor? featureCursor)
        {
            this.view = view;
            this.input = input;
            this.featureCursor = featureCursor;
            getFeatures = featureCursor?.GetGetter<VBuffer<float>>(view.features);
            int size = view.model.InputShape.Size, classes = view.model.NumberOfClasses;
            pixels = featureCursor is null ? Array.Empty<float>() : new float[view.batchSize * size];
            probabilities = featureCursor is null ? Array.Empty<float>() : new float[view.batchSize * classes];
            values = new ScoredRowValues(view.schema, input, () => probabilities.AsSpan(rowInBatch * classes, classes));
        }

        public override DataViewSchema Schema => view.schema.Output;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            view.schema.IsInput(column) ? input.IsColumnActive(view.schema.Input[column.Index]) : featureCursor is not null;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            return values.GetGetter<TValue>(column);
        }

        public override bool MoveNext()
        {
            if (!input.MoveNext())
            {
                return false;
            }

            if (featureCursor is not null && ++rowInBatch >= rowsInBatch)
            {
                ScoreNextBatch();
            }

            return true;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                input.Dispose();
                featureCursor?.Dispose();
            }

            base.Dispose(disposing);
        }

        private void ScoreNextBatch()
        {
            int size = view.model.InputShape.Size;
            int count = 0;
            while (count < view.batchSize && featureCursor!.MoveNext())
            {
                getFeatures!(ref vector);
                vector.CopyTo(pixels.AsSpan(count * size, size));
                count++;
            }

            if (count == 0)
            {
                throw new InvalidOperationException(
                    $"The input has more rows than its feature column '{view.features.Name}' yielded: its cursors disagree on order.");
            }

            view.model.Predict(pixels, count, probabilities);
            rowsInBatch = count;
            rowInBatch = 0;
        }
    }
}
