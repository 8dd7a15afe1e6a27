using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using XNet.Architectures;

namespace XNet.MLNet.Data;

/// <summary>
/// A feature column of images, decoded (<c>MLImage</c>, from <c>LoadImages</c>) or encoded (<c>VarVector&lt;Byte&gt;</c>,
/// from <c>LoadRawImageBytes</c>, the column ImageClassificationTrainer takes), and the transforms that turn it into the
/// pixel vector an X-Net computes on: encoded bytes decoded into an <c>MLImage</c>, then ML.NET's own ResizeImages with
/// <c>Fill</c> (the whole image, stretched to the model's input), grayscale for one channel, and ExtractPixels (planar,
/// 0-255). A pipeline that does the same by hand gives the same pixels, so the three input forms train alike.
/// </summary>
internal static class ImageColumn
{
    /// <summary>The pixel column the transforms add (and the transformer drops again after scoring).</summary>
    public const string PixelColumn = "XNetPixels";

    private const string DecodedColumn = "XNetDecodedImage";

    /// <summary>Whether a column of this type holds images rather than pixels.</summary>
    public static bool Holds(DataViewType type) =>
        type is ImageDataViewType || type is VectorDataViewType { IsKnownSize: false } vector && vector.ItemType == NumberDataViewType.Byte;

    /// <summary>The input shape for images when the options give none: the architecture family's reference input, in colour.</summary>
    public static ImageShape DefaultShape(string architecture)
    {
        var input = ModelZoo.FamilyOf(architecture).Input;
        return new ImageShape(3, input.Height, input.Width);
    }

    /// <summary>The fitted transforms from <paramref name="column"/> of <paramref name="data"/> to <see cref="PixelColumn"/>.</summary>
    public static ITransformer ToPixels(IDataView data, string column, ImageShape shape)
    {
        var ml = new MLContext();
        IEstimator<ITransformer> chain = new EstimatorChain<ITransformer>();
        string images = column;
        if (data.Schema[column].Type is VectorDataViewType)
        {
            var input = SchemaDefinition.Create(typeof(EncodedImage));
            input[nameof(EncodedImage.Bytes)].ColumnName = column;
            var output = SchemaDefinition.Create(typeof(DecodedImage));
            output[nameof(DecodedImage.Image)].ColumnName = DecodedColumn;
            chain = chain.Append(ml.Transforms.CustomMapping<EncodedImage, DecodedImage>(
                (encoded, decoded) => decoded.Image = MLImage.CreateFromStream(new MemoryStream(encoded.Bytes, writable: false)),
                contractName: null, input, output));
            images = DecodedColumn;
        }

        chain = chain.Append(ImageFileInput.CreateImagePipeline(ml, shape, images, PixelColumn, ImageResizingEstimator.ResizingKind.Fill));
        if (images == DecodedColumn)
        {
            chain = chain.Append(ml.Transforms.DropColumns(DecodedColumn));
        }

        return chain.Fit(data);
    }

    private sealed class EncodedImage
    {
        public byte[] Bytes { get; set; } = [];
    }

    private sealed class DecodedImage
    {
        [ImageType(1, 1)] // registers MLImage as a column type; the size is not checked by ResizeImages
        public MLImage? Image { get; set; }
    }
}
