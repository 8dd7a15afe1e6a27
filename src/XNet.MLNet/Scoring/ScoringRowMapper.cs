using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Scoring;

/// <summary>The per-row path PredictionEngine uses: one forward pass per input row, cached by row position.</summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    private readonly ScoringSchema schema;
    private readonly XNetModelParameters model;
    private readonly DataViewSchema.Column features;

    public ScoringRowMapper(ScoringSchema schema, XNetModelParameters model, DataViewSchema.Column features)
    {
        this.schema = schema;
        this.model = model;
        this.features = features;
    }

    public DataViewSchema InputSchema => schema.Input;

    public DataViewSchema OutputSchema => schema.Output;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = dependingColumns.ToArray();
        var inputs = needed.Where(schema.IsInput).Select(c => schema.Input[c.Index]);
        return needed.Any(c => !schema.IsInput(c)) ? inputs.Append(features).Distinct() : inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new Row(this, input, activeColumns.ToArray());

    private sealed class Row : DataViewRow
    {
        private readonly ScoringRowMapper mapper;
        private readonly DataViewRow input;
        private readonly HashSet<int> active;
        private readonly ScoredRowValues values;
        private readonly ValueGetter<VBuffer<float>>? getFeatures;
        private readonly float[] pixels;
        private readonly float[] probabilities;
        private VBuffer<float> vector;
        private long scoredPosition = -1;

        public Row(ScoringRowMapper mapper, DataViewRow input, DataViewSchema.Column[] activeColumns)
        {
            this.mapper = mapper;
            this.input = input;
            active = activeColumns.Select(c => c.Index).ToHashSet();
            bool scores = activeColumns.Any(c => !mapper.schema.IsInput(c));
            getFeatures = scores ? input.GetGetter<VBuffer<float>>(mapper.features) : null;
            pixels = new float[mapper.model.InputShape.Size];
            probabilities = new float[mapper.model.NumberOfClasses];
            values = new ScoredRowValues(mapper.schema, input, CurrentProbabilities);
        }

        public override DataViewSchema Schema => mapper.schema.Output;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => values.GetGetter<TValue>(column);

        private ReadOnlySpan<float> CurrentProbabilities()
        {
            if (scoredPosition != input.Position || input.Position < 0)
            {
                getFeatures!(ref vector);
                vector.CopyTo(pixels);
                mapper.model.Predict(pixels, 1, probabilities);
                scoredPosition = input.Position;
            }

            return probabilities;
        }
    }
}
