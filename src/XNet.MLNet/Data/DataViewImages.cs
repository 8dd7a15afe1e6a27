using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.Architectures;
using XNet.MLNet.Training;

namespace XNet.MLNet.Data;

/// <summary>
/// Adapts an IDataView with a key-typed label and a pixel-vector feature column into an <see cref="ImageSet"/> for the
/// training engine, checking the schema and the values on the way; every error names the column.
/// </summary>
internal static class DataViewImages
{
    /// <summary>The image shape of a feature column: from the explicit shape, the vector's dimensions, or a square single channel.</summary>
    /// <exception cref="ArgumentException">When the column is missing, not a known-size Single vector, or does not match the shape.</exception>
    public static ImageShape ResolveShape(DataViewSchema schema, string featureColumn, ImageShape? explicitShape, bool imagesToo = false)
    {
        var column = schema.GetColumnOrNull(featureColumn) ?? throw MissingColumn("Features", featureColumn, Present(schema));
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType type, IsKnownSize: true } vector || type != NumberDataViewType.Single)
        {
            throw NotPixels(featureColumn, column.Type, imagesToo);
        }

        var dims = vector.Dimensions;
        if (explicitShape is not null)
        {
            explicitShape.Validate($"Features column '{featureColumn}'");
            if (explicitShape.Size != vector.Size)
            {
                throw new ArgumentException(
                    $"Features column '{featureColumn}' has {vector.Size} values per row, but the image shape {explicitShape} needs {explicitShape.Size}.",
                    nameof(featureColumn));
            }

            // A column that declares its (C, H, W) or (H, W) is read as declared: options that say otherwise would
            // silently read its pixels in another order (one channel interleaved, (H, W, 1), is the same order).
            int[] declared = dims.Length == 2 ? [1, dims[0], dims[1]] : dims.Length == 3 && dims[2] == 1 ? [1, dims[0], dims[1]] : dims.ToArray();
            if (declared.Length == 3 && !declared.SequenceEqual(new[] { explicitShape.Channels, explicitShape.Height, explicitShape.Width }))
            {
                throw new ArgumentException(
                    $"Features column '{featureColumn}' declares its shape as ({string.Join(", ", dims.ToArray())}), but ImageChannels, " +
                    $"ImageHeight and ImageWidth give {explicitShape}; leave them unset, or give the column's own shape.", nameof(featureColumn));
            }

            return explicitShape;
        }

        if (dims.Length == 3 && dims[2] <= 4 && dims[0] > 4)
        {
            throw new ArgumentException(
                $"Features column '{featureColumn}' looks interleaved (H, W, C) = ({dims[0]}, {dims[1]}, {dims[2]}); X-Net expects planar " +
                "(C, H, W) pixels: use ExtractPixels(..., interleavePixelColors: false).", nameof(featureColumn));
        }

        if (dims.Length == 3)
        {
            return new ImageShape(dims[0], dims[1], dims[2]);
        }

        if (dims.Length == 2)
        {
            return new ImageShape(1, dims[0], dims[1]);
        }

        int side = (int)Math.Round(Math.Sqrt(vector.Size));
        return side * side == vector.Size ? new ImageShape(1, side, side)
            : throw new ArgumentException(
                $"Cannot infer the image shape of Features column '{featureColumn}' ({vector.Size} values, no dimensions): " +
                "set ImageChannels, ImageHeight and ImageWidth in the options.", nameof(featureColumn));
    }

    /// <summary>The key count of a label column.</summary>
    /// <exception cref="ArgumentException">When the column is missing, not a key, or has fewer than 2 classes.</exception>
    public static KeyDataViewType LabelType(DataViewSchema schema, string labelColumn)
    {
        var column = schema.GetColumnOrNull(labelColumn) ?? throw MissingColumn("Label", labelColumn, Present(schema));
        if (column.Type is not KeyDataViewType key)
        {
            throw LabelNotKey(labelColumn, column.Type);
        }

        if (key.Count < 2 || key.Count > int.MaxValue)
        {
            throw new ArgumentException(
                $"Label column '{labelColumn}' has {key.Count} classes; expected at least 2. (A MapValueToKey fitted on data without " +
                "rows makes a key of one value: check that the data is not empty.)", nameof(labelColumn));
        }

        return key;
    }

    /// <summary>Reads every labelled row (rows with a missing label, key 0, are skipped and counted).</summary>
    /// <exception cref="InvalidOperationException">
    /// When a pixel is NaN or infinite, a label lies outside its key range, or no labelled row exists; the message names the column and row.
    /// </exception>
    public static (ImageSet Images, long SkippedRows) Read(IDataView data, string featureColumn, string labelColumn, ImageShape shape,
        int numClasses, string role, CancellationToken cancellation, string? imageColumn = null)
    {
        if (data is ByteImageDataView { Images: var stored } view && view.Shape == shape && view.ClassNames.Count == numClasses
            && featureColumn == "Features" && labelColumn == "Label")
        {
            // The readers' own views (idx, CIFAR, an image folder's cache) are read where they are, not copied.
            return (new ImageSet(shape, stored, numClasses, indices: null, ownsStorage: false), 0);
        }

        var features = data.Schema[featureColumn];
        var label = data.Schema[labelColumn];
        int size = shape.Size;
        // Whole-number pixels go to a file of bytes, so memory does not grow with the data; the first other value moves
        // what was read into memory and the rest follows it there, as given.
        var bytes = new ByteFileStorage(size);
        List<float>? pixels = null;
        var labels = new List<int>();
        long skipped = 0, row = -1;
        try
        {
            using var cursor = data.GetRowCursor(new[] { features, label });
            var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
            var getLabel = KeyGetter(cursor, label);
            VBuffer<float> vector = default;
            var dense = new float[size];
            while (cursor.MoveNext())
            {
                row++;
                if ((row & 1023) == 0)
                {
                    cancellation.ThrowIfCancellationRequested();
                }

                ulong key = getLabel();
                if (key == 0)
                {
                    skipped++;
                    continue;
                }

                if (key > (ulong)numClasses)
                {
                    throw new InvalidOperationException(
                        $"Label column '{labelColumn}' of the {role} data has key {key} at row {row}, outside its key range 1-{numClasses} " +
                        "(0 means missing). The column's key type does not match its values; build it with MapValueToKey.");
                }

                getFeatures(ref vector);
                vector.CopyTo(dense);
                for (int p = 0; p < size; p++)
                {
                    if (!float.IsFinite(dense[p]))
                    {
                        throw new InvalidOperationException(
                            $"Features column '{featureColumn}' of the {role} data has the value {dense[p]} at row {row}, pixel {p}; " +
                            "X-Net needs finite pixel values (replace missing values first, e.g. mlContext.Transforms.ReplaceMissingValues).");
                    }
                }

                if (pixels is null && !bytes.TryAppend(dense, (int)(key - 1)))
                {
                    pixels = new List<float>(bytes.Count * size);
                    var image = new float[size];
                    for (int i = 0; i < bytes.Count; i++)
                    {
                        bytes.CopyImage(i, image);
                        pixels.AddRange(image);
                    }
                }

                pixels?.AddRange(dense);
                labels.Add((int)(key - 1));
            }

            if (labels.Count == 0)
            {
                throw new InvalidOperationException(
                    $"The {role} data has no rows with a label in column '{labelColumn}' ({row + 1} rows read, {skipped} without a label).");
            }
        }
        catch (Exception ex) when (Undecodable(ex) is { } undecodable)
        {
            // ML.NET's cursor reads rows on several threads, so the row it reports is not the image's: name the column.
            bytes.Dispose();
            throw new InvalidDataException(
                $"Features column '{imageColumn ?? featureColumn}' of the {role} data: {undecodable.Message} Remove that row or replace its image.", ex);
        }
        catch
        {
            bytes.Dispose();
            throw;
        }

        if (pixels is null)
        {
            return (new ImageSet(shape, bytes, numClasses, indices: null, ownsStorage: true), skipped);
        }

        bytes.Dispose();
        return (new ImageSet(shape, pixels.ToArray(), labels.ToArray(), numClasses), skipped);
    }

    /// <summary>The exception in <paramref name="ex"/>'s chain that says an encoded image cannot be decoded, if any.</summary>
    private static Exception? Undecodable(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex.Data.Contains(ImageColumn.UndecodableImage))
            {
                return ex;
            }
        }

        return null;
    }

    /// <summary>A key column's value widened to ulong, whichever of ML.NET's key raw types (byte, ushort, uint, ulong) it has.</summary>
    private static Func<ulong> KeyGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        Func<ulong> Widen<T>(Func<T, ulong> widen)
        {
            var get = cursor.GetGetter<T>(column);
            return () => { T value = default!; get(ref value); return widen(value); };
        }

        var raw = column.Type.RawType;
        return raw == typeof(uint) ? Widen<uint>(v => v) : raw == typeof(ushort) ? Widen<ushort>(v => v)
            : raw == typeof(byte) ? Widen<byte>(v => v) : Widen<ulong>(v => v);
    }

    /// <summary>A missing column, with the columns that are there (name and type), as the schema check and the data path both say it.</summary>
    public static ArgumentException MissingColumn(string role, string name, IEnumerable<string> present) =>
        new($"{role} column '{name}' was not found in the input schema; columns present: {string.Join(", ", present)}.", name);

    /// <summary>A label column that is not a key; ML.NET's multiclass trainers take key-typed labels.</summary>
    public static ArgumentException LabelNotKey(string name, object type) =>
        new($"Label column '{name}' has type {type}; expected a key type. Add " +
            $"mlContext.Transforms.Conversion.MapValueToKey(\"{name}\") before the X-Net trainer.", name);

    /// <summary>
    /// A feature column that does not hold pixels, or with <paramref name="imagesToo"/> (the trainer, which takes images as
    /// well) neither pixels nor images.
    /// </summary>
    public static ArgumentException NotPixels(string name, object type, bool imagesToo) =>
        new($"Features column '{name}' has type {type}; expected " + (imagesToo
            ? "pixels (a known-size Vector<Single, C*H*W>, e.g. from ExtractPixels) or images (MLImage from LoadImages, or encoded " +
              "bytes from LoadRawImageBytes)."
            : "a known-size vector of Single pixels (Vector<Single, C*H*W>, e.g. from ExtractPixels)."), name);

    private static IEnumerable<string> Present(DataViewSchema schema) =>
        schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}' ({c.Type})");
}
