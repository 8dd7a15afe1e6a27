using System.Diagnostics;
using SkiaSharp;

namespace XNet.Tests.Shared;

/// <summary>
/// Writes a learnable folder of photo-like JPEGs for the memory and throughput benchmarks of image folders:
/// <c>root/train/&lt;class&gt;/*.jpg</c> and <c>root/val/&lt;class&gt;/*.jpg</c>. Each class is a shape (circle, square,
/// triangle, ring, cross, ...) drawn at a random place, size, rotation and colour over a random two-colour gradient with
/// noise, so a model has to learn the shape, not a colour. Seeded: the same arguments give the same files. The benchmarks
/// write large folders with it, the sample tests tiny ones.
/// </summary>
internal static class PhotoFolder
{
    private static readonly string[] Shapes = ["circle", "square", "triangle", "ring", "cross", "bar", "diamond", "star", "ellipse", "frame"];

    public static void Write(string root, int count, int size, int classes, int seed)
    {
        if (classes is < 2 or > 10)
        {
            throw new ArgumentException($"--classes must be 2-10 (one shape each), got {classes}.");
        }

        var clock = Stopwatch.StartNew();
        int validation = Math.Max(classes, count / 10);
        Parallel.For(0, count + validation, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            int label = i % classes;
            string split = i < count ? "train" : "val";
            string folder = Path.Combine(root, split, Shapes[label]);
            Directory.CreateDirectory(folder);
            using var bitmap = Draw(label, size, new Random(HashCode.Combine(seed, i)));
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 85);
            using var file = File.Create(Path.Combine(folder, $"{i:D7}.jpg"));
            data.SaveTo(file);
        });
        long bytes = Directory.EnumerateFiles(root, "*.jpg", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"wrote {count:N0} training and {validation:N0} validation JPEGs of {size}x{size} in {classes} classes to {root}: " +
                          $"{bytes / 1e6:F1} MB in {clock.Elapsed.TotalSeconds:F1} s");
    }

    private static SKBitmap Draw(int label, int size, Random random)
    {
        var bitmap = new SKBitmap(size, size);
        using var canvas = new SKCanvas(bitmap);
        SKColor RandomColor() => new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
        // Every Skia object is disposed here, on the drawing thread: left to finalizers, they are freed on the finalizer
        // thread while other threads draw, and one such run ended in a segmentation fault inside libSkiaSharp.
        using (var gradient = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(size, random.Next(size)),
                   [RandomColor(), RandomColor()], SKShaderTileMode.Clamp))
        using (var background = new SKPaint { Shader = gradient })
        {
            canvas.DrawRect(0, 0, size, size, background);
        }

        using var paint = new SKPaint { Color = RandomColor(), IsAntialias = true, StrokeWidth = size / 16f };
        float radius = size * (0.15f + 0.2f * (float)random.NextDouble());
        float cx = radius + (float)random.NextDouble() * (size - 2 * radius), cy = radius + (float)random.NextDouble() * (size - 2 * radius);
        canvas.Translate(cx, cy);
        canvas.RotateDegrees((float)random.NextDouble() * 360);
        switch (Shapes[label])
        {
            case "circle": canvas.DrawCircle(0, 0, radius, paint); break;
            case "square": canvas.DrawRect(-radius, -radius, 2 * radius, 2 * radius, paint); break;
            case "triangle": DrawPath(canvas, Polygon(radius, 3), paint); break;
            case "ring": paint.Style = SKPaintStyle.Stroke; canvas.DrawCircle(0, 0, radius, paint); break;
            case "cross": canvas.DrawRect(-radius, -radius / 4, 2 * radius, radius / 2, paint); canvas.DrawRect(-radius / 4, -radius, radius / 2, 2 * radius, paint); break;
            case "bar": canvas.DrawRect(-radius, -radius / 5, 2 * radius, 2 * radius / 5, paint); break;
            case "diamond": DrawPath(canvas, Polygon(radius, 4), paint); break;
            case "star": DrawPath(canvas, Star(radius), paint); break;
            case "ellipse": canvas.DrawOval(0, 0, radius, radius / 2, paint); break;
            default: paint.Style = SKPaintStyle.Stroke; canvas.DrawRect(-radius, -radius, 2 * radius, 2 * radius, paint); break;
        }

        canvas.ResetMatrix();
        // Noise, so that no two images of a class share their pixels.
        var pixels = bitmap.Pixels;
        for (int p = 0; p < pixels.Length; p++)
        {
            int n = random.Next(-24, 25);
            var c = pixels[p];
            pixels[p] = new SKColor(Clamp(c.Red + n), Clamp(c.Green + n), Clamp(c.Blue + n));
        }

        bitmap.Pixels = pixels;
        return bitmap;
    }

    private static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    private static void DrawPath(SKCanvas canvas, SKPath path, SKPaint paint)
    {
        using (path)
        {
            canvas.DrawPath(path, paint);
        }
    }

    private static SKPath Polygon(float radius, int sides)
    {
        var path = new SKPath();
        for (int k = 0; k < sides; k++)
        {
            double a = 2 * Math.PI * k / sides;
            var point = new SKPoint((float)(radius * Math.Cos(a)), (float)(radius * Math.Sin(a)));
            if (k == 0) { path.MoveTo(point); } else { path.LineTo(point); }
        }

        path.Close();
        return path;
    }

    private static SKPath Star(float radius)
    {
        var path = new SKPath();
        for (int k = 0; k < 10; k++)
        {
            double a = Math.PI * k / 5;
            float r = k % 2 == 0 ? radius : radius / 2.5f;
            var point = new SKPoint((float)(r * Math.Cos(a)), (float)(r * Math.Sin(a)));
            if (k == 0) { path.MoveTo(point); } else { path.LineTo(point); }
        }

        path.Close();
        return path;
    }
}
