using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
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

    /// <summary>The key of <see cref="Exception.Data"/> that marks encoded image bytes that cannot be decoded (<see cref="DecodeImageBytes"/>).</summary>
    public const string UndecodableImage = "XNet.UndecodableImage";

    private const string EncodedColumn = "XNetEncodedImage";
    private const string DecodedColumn = "XNetDecodedImage";

    /// <summary>Whether a column of this type holds images rather than pixels.</summary>
    public static bool Holds(DataViewType type) =>
        type is ImageDataViewType || type is VectorDataViewType { IsKnownSize: false } vector && vector.ItemType == NumberDataViewType.Byte;

    /// <summary>
    /// The input shape images are brought to: the given channels, height and width, and for those not given 3 (colour)
    /// and the architecture family's reference size (32x32 for the CIFAR families, 224x224 for the ImageNet ones).
    /// </summary>
    public static ImageShape InputShape(int? channels, int? height, int? width, string architecture)
    {
        var input = ModelZoo.FamilyOf(architecture).Input;
        return new ImageShape(channels ?? 3, height ?? input.Height, width ?? input.Width);
    }

    /// <summary>The fitted transforms from <paramref name="column"/> of <paramref name="data"/> to <see cref="PixelColumn"/>.</summary>
    public static ITransformer ToPixels(IDataView data, string column, ImageShape shape)
    {
        var ml = new MLContext();
        IEstimator<ITransformer> chain = new EstimatorChain<ITransformer>();
        string images = column;
        if (data.Schema[column].Type is VectorDataViewType)
        {
            // A saved custom mapping keeps its contract name but not its column renames: the bytes go to a fixed column first.
            chain = chain.Append(ml.Transforms.CopyColumns(EncodedColumn, column))
                .Append(ml.Transforms.CustomMapping(new DecodeImageBytes().GetMapping(), DecodeImageBytes.Contract));
            images = DecodedColumn;
        }

        chain = chain.Append(ImageFileInput.CreateImagePipeline(ml, shape, images, PixelColumn));
        if (images == DecodedColumn)
        {
            chain = chain.Append(ml.Transforms.DropColumns(EncodedColumn, DecodedColumn));
        }

        return chain.Fit(data);
    }

    /// <summary>
    /// Decodes encoded image bytes (JPEG, PNG, BMP, ...) into an MLImage: the one step of an X-Net that reads
    /// <c>LoadRawImageBytes</c> that ML.NET has no transform for. A model saved with it loads where this library's assembly
    /// is registered: <c>mlContext.ComponentCatalog.RegisterAssembly(typeof(XNetTrainer).Assembly)</c>.
    /// </summary>
    [CustomMappingFactoryAttribute(Contract)]
    public sealed class DecodeImageBytes : CustomMappingFactory<EncodedImage, DecodedImage>
    {
        /// <summary>The name the mapping is saved under.</summary>
        public const string Contract = "XNet.DecodeImageBytes";

        /// <inheritdoc />
        /// <remarks>
        /// The bytes are checked to be a whole image first (<see cref="ImageFileInput.CheckComplete(byte[])"/>): ML.NET's
        /// decoder fills the missing rows of a truncated image in silently and says only "Invalid input stream contents"
        /// for bytes that are no image at all.
        /// </remarks>
        public override Action<EncodedImage, DecodedImage> GetMapping() =>
            (encoded, decoded) =>
            {
                try
                {
                    ImageFileInput.CheckComplete(encoded.Bytes);
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException($"An image's bytes cannot be decoded: {ex.Message}.", ex) { Data = { [UndecodableImage] = true } };
                }

                decoded.Image = MLImage.CreateFromStream(new MemoryStream(encoded.Bytes, writable: false));
            };
    }

    /// <summary>The input row of <see cref="DecodeImageBytes"/>.</summary>
    public sealed class EncodedImage
    {
        /// <summary>The encoded image.</summary>
        [ColumnName(EncodedColumn)]
        public byte[] Bytes { get; set; } = [];
    }

    /// <summary>The output row of <see cref="DecodeImageBytes"/>.</summary>
    public sealed class DecodedImage
    {
        /// <summary>The decoded image.</summary>
        [ColumnName(DecodedColumn)]
        [ImageType(1, 1)] // registers MLImage as a column type; the size is not checked by ResizeImages
        public MLImage? Image { get; set; }
    }
}
