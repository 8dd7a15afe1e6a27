using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.Architectures;
using XNet.MLNet.Training;

namespace XNet.MLNet.Data;

/// <summary>
/// An IDataView over 8-bit images in planar (C, H, W) order, in memory (idx, CIFAR) or in a file (an image folder's
/// cache): a key-typed <c>Label</c> column whose KeyValues are the class names, and a <c>Features</c> column typed
/// <c>Vector&lt;Single, C, H, W&gt;</c> of raw 0-255 values, the schema <see cref="IdxDataset"/> produces. Pixels stay
/// bytes (a quarter of the memory of floats) and are widened into the caller's reused buffer by the getter, so cursoring
/// allocates nothing per row. The trainer reads <see cref="Images"/> directly, without a copy.
/// </summary>
internal sealed class ByteImageDataView : IDataView
{
    private readonly int size;

    /// <param name="shape">The image shape.</param>
    /// <param name="classNames">Class names, label 0 first.</param>
    /// <param name="pixels">One planar image of <c>shape.Size</c> bytes per row.</param>
    /// <param name="labels">0-based class index per row, below the class count.</param>
    public ByteImageDataView(ImageShape shape, IReadOnlyList<string> classNames, ReadOnlyMemory<byte>[] pixels, uint[] labels)
        : this(shape, classNames, new ByteMemoryStorage(pixels, labels))
    {
        if (pixels.Length != labels.Length || pixels.Any(p => p.Length != shape.Size))
        {
            throw new ArgumentException($"{pixels.Length} images of {shape} do not match {labels.Length} labels.");
        }
    }

    /// <param name="shape">The image shape.</param>
    /// <param name="classNames">Class names, label 0 first.</param>
    /// <param name="images">The images and their 0-based labels, below the class count.</param>
    public ByteImageDataView(ImageShape shape, IReadOnlyList<string> classNames, IImageStorage images)
    {
        if (Enumerable.Range(0, images.Count).Any(i => images.Label(i) < 0 || images.Label(i) >= classNames.Count))
        {
            throw new ArgumentException($"A label of the {images.Count} images is outside the {classNames.Count} classes.");
        }

        size = shape.Size;
        Images = images;
        Shape = shape;
        ClassNames = classNames;

        var builder = new DataViewSchema.Builder();
        var annotations = new DataViewSchema.Annotations.Builder();
        var keyValues = new VBuffer<ReadOnlyMemory<char>>(classNames.Count, classNames.Select(n => n.AsMemory()).ToArray());
        annotations.Add("KeyValues", new VectorDataViewType(TextDataViewType.Instance, classNames.Count),
            (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> v) => keyValues.CopyTo(ref v)));
        builder.AddColumn("Label", new KeyDataViewType(typeof(uint), classNames.Count), annotations.ToAnnotations());
        builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, shape.Channels, shape.Height, shape.Width));
        Schema = builder.ToSchema();
    }

    /// <summary>The images and labels, row by row.</summary>
    public IImageStorage Images { get; }

    /// <summary>The image shape of every row.</summary>
    public ImageShape Shape { get; }

    /// <summary>Class names, label 0 first.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc/>
    public bool CanShuffle => true;

    /// <inheritdoc/>
    public DataViewSchema Schema { get; }

    /// <inheritdoc/>
    public long? GetRowCount() => Images.Count;

    /// <inheritdoc/>
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int[]? order = null;
        if (rand is not null)
        {
            order = Enumerable.Range(0, Images.Count).ToArray();
            rand.Shuffle(order);
        }

        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            active[column.Index] = true;
        }

        return new Cursor(this, active, order);
    }

    /// <inheritdoc/>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ByteImageDataView view;
        private readonly bool[] active;
        private readonly int[]? order;
        private long position = -1;
        private int row = -1;

        public Cursor(ByteImageDataView view, bool[] active, int[]? order)
        {
            this.view = view;
            this.active = active;
            this.order = order;
        }

        public override DataViewSchema Schema => view.Schema;

        public override long Position => position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (position + 1 >= view.Images.Count)
            {
                position = view.Images.Count;
                row = -1;
                return false;
            }

            position++;
            row = order is null ? (int)position : order[position];
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId value) =>
        {
            EnsureRow();
            value = new DataViewRowId((ulong)row, 0);
        };

        public override bool IsColumnActive(DataViewSchema.Column column) => active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
            }

            Delegate getter = column.Index switch
            {
                0 => (ValueGetter<uint>)((ref uint value) =>
                {
                    EnsureRow();
                    value = (uint)view.Images.Label(row) + 1; // key values are 1-based; 0 means missing
                }),
                _ => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                {
                    EnsureRow();
                    var editor = VBufferEditor.Create(ref value, view.size);
                    view.Images.CopyImage(row, editor.Values);
                    value = editor.Commit();
                }),
            };
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException(
                    $"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }

        private void EnsureRow()
        {
            if (row < 0)
            {
                throw new InvalidOperationException("The cursor is not on a row (call MoveNext first).");
            }
        }
    }
}
