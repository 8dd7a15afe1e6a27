using TorchSharp;
using XNet.Architectures;
using static TorchSharp.torch;

namespace XNet.Architectures.Tests;

[TestClass]
public sealed class TorchRuntimeTests
{
    [TestMethod]
    public void TorchSharpLoadsAndRunsAConvolution()
    {
        TorchRuntime.EnsureLoaded();
        using var conv = nn.Conv2d(1, 4, 3, padding: 1, bias: false);
        using (no_grad())
        {
            conv.weight!.fill_(1);
        }

        using var input = ones(2, 1, 5, 5);
        using var output = conv.forward(input);

        CollectionAssert.AreEqual(new long[] { 2, 4, 5, 5 }, output.shape);
        Assert.AreEqual(9f, output[0, 0, 2, 2].item<float>(), "an interior pixel sums the 3x3 window of ones");
        Assert.AreEqual(4f, output[0, 0, 0, 0].item<float>(), "a corner pixel sees 2x2 ones and zero padding");
    }

    [TestMethod]
    public void GlibcAllocatorTakesItsSettingsOnGlibcLinuxOnly()
    {
        bool glibc = OperatingSystem.IsLinux() &&
                     !System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier.Contains("musl", StringComparison.Ordinal);
        Assert.AreEqual(glibc, GlibcAllocator.KeepFreedMemory(), "mallopt accepts the thresholds exactly where glibc is the C library");
    }
}
