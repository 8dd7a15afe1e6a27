using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

// Usage: dotnet XNet.Persistence.Probe.dll <model.zip> <rows.tsv>
//        dotnet XNet.Persistence.Probe.dll typed <model.zip> <rows.tsv>
// rows.tsv: "features<TAB>N", then one "label<TAB>v0,v1,...,vN-1" line per row.
// Prints the loaded schema's types, one line per row (predicted key, its class name, the scores), Evaluate's accuracy,
// a PredictionEngine prediction of the first row, and how many X-Net or TorchSharp assemblies the process holds.
// "typed": the saved pipeline ends in MapKeyToValue("PredictedLabel") and its Label has the type the user gave it (uint,
// int, string, bool); prints PredictedLabel's type, Score's slot names, and each row's PredictedLabel from a
// PredictionEngine whose output class declares the label's own type.
if (args.Length == 3 && args[0] == "typed")
{
    var typedContext = new MLContext(seed: 1);
    var typedModel = typedContext.Model.Load(args[1], out var typedSchema);
    var labelType = typedSchema["Label"].Type.RawType;
    int code = labelType == typeof(uint) ? TypedProbe.Run<uint>(typedContext, typedModel, typedSchema, args[2], uint.Parse)
        : labelType == typeof(int) ? TypedProbe.Run<int>(typedContext, typedModel, typedSchema, args[2], int.Parse)
        : labelType == typeof(bool) ? TypedProbe.Run<bool>(typedContext, typedModel, typedSchema, args[2], bool.Parse)
        : labelType == typeof(DateTime) ? TypedProbe.Run<DateTime>(typedContext, typedModel, typedSchema, args[2],
            s => DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind))
        : labelType == typeof(DateTimeOffset) ? TypedProbe.Run<DateTimeOffset>(typedContext, typedModel, typedSchema, args[2],
            s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind))
        : labelType == typeof(TimeSpan) ? TypedProbe.Run<TimeSpan>(typedContext, typedModel, typedSchema, args[2],
            s => TimeSpan.ParseExact(s, "c", CultureInfo.InvariantCulture))
        : TypedProbe.Run<string>(typedContext, typedModel, typedSchema, args[2], s => s);
    (typedModel as IDisposable)?.Dispose();
    return code;
}

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: XNet.Persistence.Probe [typed] <model.zip> <rows.tsv>");
    return 2;
}

var culture = CultureInfo.InvariantCulture;
var lines = File.ReadAllLines(args[1]);
int size = int.Parse(lines[0].Split('\t')[1], culture);
var rows = lines.Skip(1).Select(line =>
{
    var parts = line.Split('\t');
    return new Row { Label = parts[0], Features = parts[1].Split(',').Select(v => float.Parse(v, culture)).ToArray() };
}).ToArray();

var ml = new MLContext(seed: 1);
var model = ml.Model.Load(args[0], out var inputSchema);
var definition = SchemaDefinition.Create(typeof(Row));
definition[nameof(Row.Features)].ColumnType = inputSchema[nameof(Row.Features)].Type;
var data = ml.Data.LoadFromEnumerable(rows, definition);
var scored = model.Transform(data);

Console.WriteLine($"types\t{scored.Schema["PredictedLabel"].Type}\t{scored.Schema["Score"].Type}");
VBuffer<ReadOnlyMemory<char>> keyValues = default;
scored.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
var names = keyValues.DenseValues().Select(v => v.ToString()).ToArray();
var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
var scores = scored.GetColumn<float[]>("Score").ToArray();
for (int i = 0; i < keys.Length; i++)
{
    Console.WriteLine($"row\t{i}\t{keys[i]}\t{names[keys[i] - 1]}\t{string.Join(",", scores[i].Select(s => s.ToString("R", culture)))}");
}

var metrics = ml.MulticlassClassification.Evaluate(scored);
Console.WriteLine($"accuracy\t{metrics.MicroAccuracy.ToString("R", culture)}\t{metrics.LogLoss.ToString("R", culture)}");

using (var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model, inputSchemaDefinition: definition))
{
    var prediction = engine.Predict(rows[0]);
    Console.WriteLine($"engine\t{prediction.PredictedLabel}\t{string.Join(",", prediction.Score.Select(s => s.ToString("R", culture)))}");
}

int foreign = AppDomain.CurrentDomain.GetAssemblies().Count(a => a.GetName().Name!.StartsWith("XNet.MLNet", StringComparison.Ordinal)
    || a.GetName().Name!.StartsWith("TorchSharp", StringComparison.Ordinal) || a.GetName().Name == "XNet.Architectures");
Console.WriteLine($"foreign-assemblies\t{foreign}");
(model as IDisposable)?.Dispose();
return 0;

internal sealed class Row
{
    public string Label { get; set; } = "";

    public float[] Features { get; set; } = [];
}

internal sealed class Prediction
{
    public uint PredictedLabel { get; set; }

    public float[] Score { get; set; } = [];
}

internal static class TypedProbe
{
    public static int Run<T>(MLContext ml, ITransformer model, DataViewSchema inputSchema, string rowsPath, Func<string, T> parse)
    {
        var culture = CultureInfo.InvariantCulture;
        var rows = File.ReadAllLines(rowsPath).Skip(1).Select(line =>
        {
            var parts = line.Split('\t');
            return new TypedRow<T> { Label = parse(parts[0]), Features = parts[1].Split(',').Select(v => float.Parse(v, culture)).ToArray() };
        }).ToArray();
        var definition = SchemaDefinition.Create(typeof(TypedRow<T>));
        definition[nameof(TypedRow<T>.Features)].ColumnType = inputSchema[nameof(TypedRow<T>.Features)].Type;
        var outputSchema = model.GetOutputSchema(inputSchema);
        Console.WriteLine($"typed\t{outputSchema["PredictedLabel"].Type}");
        var names = new VBuffer<ReadOnlyMemory<char>>();
        if (outputSchema["Score"].HasSlotNames())
        {
            outputSchema["Score"].GetSlotNames(ref names);
        }

        Console.WriteLine($"slot-names\t{string.Join("|", names.DenseValues())}");
        using var engine = ml.Model.CreatePredictionEngine<TypedRow<T>, TypedPrediction<T>>(model, inputSchemaDefinition: definition);
        for (int i = 0; i < rows.Length; i++)
        {
            var value = engine.Predict(rows[i]).PredictedLabel;
            Console.WriteLine($"value\t{i}\t{value switch
            {
                DateTime time => time.ToString("O", culture),
                DateTimeOffset time => time.ToString("O", culture),
                TimeSpan span => span.ToString("c", culture),
                _ => Convert.ToString(value, culture),
            }}");
        }

        return 0;
    }
}

internal sealed class TypedRow<T>
{
    public T Label { get; set; } = default!;

    public float[] Features { get; set; } = [];
}

internal sealed class TypedPrediction<T>
{
    public T PredictedLabel { get; set; } = default!;

    public float[] Score { get; set; } = [];
}
