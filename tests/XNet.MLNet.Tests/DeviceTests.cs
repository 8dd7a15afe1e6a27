using Microsoft.ML;
using XNet.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace XNet.MLNet.Tests;

/// <summary>Device choice and the CPU fallback rules (on a machine without CUDA, as CI is).</summary>
[TestClass]
public sealed class DeviceTests
{
    [TestInitialize]
    public void RequireNoCuda()
    {
        if (cuda.is_available())
        {
            Assert.Inconclusive("This machine has CUDA; these tests check the rules without it.");
        }
    }

    [TestMethod]
    [DataRow(null)]
    [DataRow("auto")]
    [DataRow(" CPU ")]
    public void AutoAndCpuChooseTheCpuWithoutAFallback(string? requested)
    {
        var choice = TorchDevices.Choose(requested, fallbackToCpu: false);
        Assert.AreEqual(DeviceType.CPU, choice.Device.type);
        StringAssert.StartsWith(choice.Description, "cpu (");
        Assert.IsNull(choice.Fallback);
    }

    [TestMethod]
    [DataRow("cuda", null)]
    [DataRow("cuda:1", null)]
    [DataRow(null, 0)]
    [DataRow("auto", 2)]
    public void MissingCudaIsAnErrorOrALoggedFallbackAsConfigured(string? requested, int? gpuDeviceId)
    {
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevices.Choose(requested, fallbackToCpu: false, gpuDeviceId));
        StringAssert.Contains(ex.Message, "CUDA is not available");
        if (gpuDeviceId is int id)
        {
            StringAssert.Contains(ex.Message, $"MLContext.GpuDeviceId = {id}");
        }

        var fallback = TorchDevices.Choose(requested, fallbackToCpu: true, gpuDeviceId);
        Assert.AreEqual(DeviceType.CPU, fallback.Device.type);
        StringAssert.Contains(fallback.Fallback!, "Falling back to the CPU");
    }

    [TestMethod]
    [DataRow("gpu")]
    [DataRow("cuda:x")]
    [DataRow("cuda:-1")]
    public void UnknownDeviceNamesAreRefused(string requested)
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => TorchDevices.Choose(requested, fallbackToCpu: true));
        StringAssert.Contains(ex.Message, $"Device '{requested}' is not valid");
    }

    [TestMethod]
    public void TrainerFollowsMlContextGpuDeviceIdAndFallbackToCpu()
    {
        var strict = new MLContext(seed: 0) { GpuDeviceId = 0, FallbackToCpu = false };
        var data = TestData.Take(strict, "train", 64);
        var options = TestData.SmallOptions();
        options.Device = null;
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => strict.MulticlassClassification.Trainers.XNet(options).Fit(data));
        StringAssert.Contains(ex.Message, "MLContext.GpuDeviceId = 0");

        var lenient = new MLContext(seed: 0) { GpuDeviceId = 0, FallbackToCpu = true };
        var log = new List<string>();
        lenient.Log += (_, e) => log.Add(e.Message);
        using var model = lenient.MulticlassClassification.Trainers.XNet(options).Fit(TestData.Take(lenient, "train", 64));
        Assert.AreEqual(DeviceType.CPU, model.Model.Device.type);
        Assert.IsTrue(log.Any(m => m.Contains("Falling back to the CPU")), string.Join("\n", log));
        Assert.IsTrue(log.Any(m => m.Contains("X-Net: training on cpu (")), string.Join("\n", log));
    }

    [TestMethod]
    public void ExplicitDeviceOverridesMlContextGpuDeviceId()
    {
        var context = new MLContext(seed: 0) { GpuDeviceId = 0, FallbackToCpu = false };
        var options = TestData.SmallOptions(); // Device = "cpu"
        using var model = context.MulticlassClassification.Trainers.XNet(options).Fit(TestData.Take(context, "train", 64));
        Assert.AreEqual(DeviceType.CPU, model.Model.Device.type);
    }
}
