using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace XNet.MLNet.Data;

/// <summary>
/// A label's key values in their own ML.NET type. Every multiclass trainer in ML.NET gives PredictedLabel the key values
/// of the label it was trained on, so <c>MapKeyToValue</c> returns what the user put into <c>MapValueToKey</c>: uint,
/// int, long, bool, string... An X-Net keeps the values as invariant text (its class names) plus the type's name, and
/// turns them back into typed annotations and lookup data here. Labels without key values get their keys, 1..N.
/// </summary>
internal static class LabelKeyValues
{
    /// <summary>The type name of text key values (and of models saved before the type was recorded).</summary>
    public const string Text = "String";

    private const string KeyValuesKind = "KeyValues";

    private static readonly Dictionary<string, IKind> Kinds = new IKind[]
    {
        new Kind<ReadOnlyMemory<char>>(TextDataViewType.Instance, s => s.AsMemory(), v => v.ToString()),
        new Kind<bool>(BooleanDataViewType.Instance, bool.Parse, v => v ? "True" : "False"),
        new Kind<sbyte>(NumberDataViewType.SByte, s => sbyte.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<byte>(NumberDataViewType.Byte, s => byte.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<short>(NumberDataViewType.Int16, s => short.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<ushort>(NumberDataViewType.UInt16, s => ushort.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<int>(NumberDataViewType.Int32, s => int.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<uint>(NumberDataViewType.UInt32, s => uint.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<long>(NumberDataViewType.Int64, s => long.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<ulong>(NumberDataViewType.UInt64, s => ulong.Parse(s, CultureInfo.InvariantCulture), v => v.ToString(CultureInfo.InvariantCulture)),
        new Kind<float>(NumberDataViewType.Single, s => float.Parse(s, CultureInfo.InvariantCulture), v => v.ToString("R", CultureInfo.InvariantCulture)),
        new Kind<double>(NumberDataViewType.Double, s => double.Parse(s, CultureInfo.InvariantCulture), v => v.ToString("R", CultureInfo.InvariantCulture)),
        new Kind<DateTime>(DateTimeDataViewType.Instance, s => DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
            v => v.ToString("O", CultureInfo.InvariantCulture)),
        new Kind<DateTimeOffset>(DateTimeOffsetDataViewType.Instance,
            s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind), v => v.ToString("O", CultureInfo.InvariantCulture)),
        new Kind<TimeSpan>(TimeSpanDataViewType.Instance, s => TimeSpan.ParseExact(s, "c", CultureInfo.InvariantCulture),
            v => v.ToString("c", CultureInfo.InvariantCulture)),
    }.ToDictionary(k => k.Name, StringComparer.Ordinal);

    /// <summary>
    /// The label's key values as text, and the name of their type. A label without key values gets its keys themselves,
    /// 1..N as UInt32, so that <c>MapKeyToValue</c> gives back the values a key column declared with <c>[KeyType(N)]</c> holds.
    /// </summary>
    /// <exception cref="ArgumentException">When the key values are of a type no kind here keeps, or not one per key.</exception>
    public static (string[] Names, string ValueType) Read(DataViewSchema.Column label)
    {
        int count = (int)((KeyDataViewType)label.Type).Count;
        var keyValues = label.Annotations.Schema.GetColumnOrNull(KeyValuesKind);
        if (keyValues is null)
        {
            return (Enumerable.Range(1, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray(), typeof(uint).Name);
        }

        var itemType = (keyValues.Value.Type as VectorDataViewType)?.ItemType;
        if (itemType is null || !Kinds.TryGetValue(itemType.RawType == typeof(ReadOnlyMemory<char>) ? Text : itemType.RawType.Name, out var kind))
        {
            throw new ArgumentException(
                $"Label column '{label.Name}' has key values of type {keyValues.Value.Type}; an X-Net keeps key values of these types: " +
                $"{string.Join(", ", Kinds.Keys)}. Map the label to one of them before MapValueToKey.");
        }

        return kind.Read(label, count) is { } names
            ? (names, kind.Name)
            : throw new ArgumentException(
                $"Label column '{label.Name}' has {count} keys but key values of another length; expected one value per key.");
    }

    /// <summary>Checks a stored type name and the class names against it.</summary>
    /// <exception cref="InvalidDataException">When the type is unknown or a name is not a value of it.</exception>
    public static void Check(string valueType, IReadOnlyList<string> names) => KindOf(valueType).Parse(names);

    /// <summary>The ML.NET item type of <paramref name="valueType"/>.</summary>
    public static DataViewType ItemType(string valueType) => KindOf(valueType).Type;

    /// <summary>Adds the typed <c>KeyValues</c> annotation to a key column's annotations.</summary>
    public static void AddKeyValues(DataViewSchema.Annotations.Builder annotations, string valueType, IReadOnlyList<string> names) =>
        KindOf(valueType).AddAnnotation(annotations, KeyValuesKind, names);

    /// <summary>Adds the typed values as an annotation of another kind (ML.NET's <c>TrainingLabelValues</c> on Score).</summary>
    public static void AddValues(DataViewSchema.Annotations.Builder annotations, string kind, string valueType, IReadOnlyList<string> names) =>
        KindOf(valueType).AddAnnotation(annotations, kind, names);

    /// <summary>
    /// Rows of (<paramref name="columnName"/> = class i's value, <paramref name="featureColumnName"/> = one-hot i) in class
    /// order (one-hot i typed as <paramref name="featureType"/>): <c>MapValueToKey(columnName, keyData: ...)</c> over them
    /// gives class i the key i + 1 with the typed key values.
    /// </summary>
    public static IDataView OneHotRows(MLContext ml, string valueType, IReadOnlyList<string> names, string columnName, string featureColumnName,
        VectorDataViewType featureType) =>
        KindOf(valueType).OneHotRows(ml, names, columnName, featureColumnName, featureType);

    private static IKind KindOf(string valueType) =>
        Kinds.TryGetValue(valueType, out var kind) ? kind
            : throw new InvalidDataException(
                $"label value type '{valueType}' is not one of {string.Join(", ", Kinds.Keys)}");

    private interface IKind
    {
        string Name { get; }

        DataViewType Type { get; }

        string[]? Read(DataViewSchema.Column label, int count);

        void Parse(IReadOnlyList<string> names);

        void AddAnnotation(DataViewSchema.Annotations.Builder annotations, string kind, IReadOnlyList<string> names);

        IDataView OneHotRows(MLContext ml, IReadOnlyList<string> names, string columnName, string featureColumnName, VectorDataViewType featureType);
    }

    private sealed class Kind<T>(PrimitiveDataViewType type, Func<string, T> parse, Func<T, string> format) : IKind
    {
        public string Name => typeof(T) == typeof(ReadOnlyMemory<char>) ? Text : typeof(T).Name;

        public DataViewType Type => type;

        public string[]? Read(DataViewSchema.Column label, int count)
        {
            VBuffer<T> values = default;
            label.GetKeyValues(ref values);
            var names = values.DenseValues().Select(format).ToArray();
            return names.Length == count ? names : null;
        }

        public void Parse(IReadOnlyList<string> names)
        {
            foreach (string name in names)
            {
                try
                {
                    parse(name);
                }
                catch (Exception ex) when (ex is FormatException or OverflowException)
                {
                    throw new InvalidDataException($"class name '{name}' is not a {Name} value", ex);
                }
            }
        }

        public void AddAnnotation(DataViewSchema.Annotations.Builder annotations, string kind, IReadOnlyList<string> names)
        {
            var values = new VBuffer<T>(names.Count, names.Select(parse).ToArray());
            annotations.Add(kind, new VectorDataViewType(type, names.Count), (ref VBuffer<T> value) => values.CopyTo(ref value));
        }

        public IDataView OneHotRows(MLContext ml, IReadOnlyList<string> names, string columnName, string featureColumnName,
            VectorDataViewType featureType)
        {
            int classes = names.Count;
            var rows = names.Select((name, i) =>
            {
                var oneHot = new float[classes];
                oneHot[i] = 1;
                return new OneHotRow { Value = parse(name), OneHot = oneHot };
            }).ToArray();
            var schema = SchemaDefinition.Create(typeof(OneHotRow));
            var (value, features) = (schema[nameof(OneHotRow.Value)], schema[nameof(OneHotRow.OneHot)]);
            (value.ColumnName, value.ColumnType) = (columnName, type);
            (features.ColumnName, features.ColumnType) = (featureColumnName, featureType);
            return ml.Data.LoadFromEnumerable(rows, schema);
        }

        private sealed class OneHotRow
        {
            public T Value { get; set; } = default!;

            public float[] OneHot { get; set; } = [];
        }
    }
}
