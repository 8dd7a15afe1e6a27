using System.Text.Json.Serialization;

namespace XNet.MLNet.Training;

/// <summary>
/// A learning-rate schedule, evaluated before every optimiser step. In JSON (checkpoints, experiment plans) it is an object
/// with a <c>kind</c> (<c>cosine</c>, <c>step</c>, <c>cifar</c>, <c>constant</c>) and its parameters:
/// <c>{ "kind": "cosine", "warmupEpochs": 1, "minimum": 0 }</c>.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(CosineSchedule), "cosine")]
[JsonDerivedType(typeof(StepSchedule), "step")]
[JsonDerivedType(typeof(CifarSchedule), "cifar")]
[JsonDerivedType(typeof(ConstantSchedule), "constant")]
public abstract record LearningRateSchedule
{
    private protected LearningRateSchedule()
    {
    }

    /// <summary>Cosine decay from the base rate to <paramref name="minimum"/>, after a linear warm-up.</summary>
    public static LearningRateSchedule Cosine(double warmupEpochs = 1, double minimum = 0) => new CosineSchedule(warmupEpochs, minimum);

    /// <summary>
    /// The paper's reference code's <c>decayschedular</c>: the base rate times <paramref name="multiplier"/> every
    /// <paramref name="interval"/> epochs, never below <paramref name="minimum"/>.
    /// </summary>
    public static LearningRateSchedule Step(int interval, double multiplier, double minimum = 0) => new StepSchedule(interval, multiplier, minimum);

    /// <summary>
    /// The paper's reference code's <c>cifarschedular</c> (written for 300 epochs): the base rate for epochs 0-149, a tenth of it from
    /// epoch 150 and a hundredth from epoch 225, never below <paramref name="minimum"/>.
    /// </summary>
    public static LearningRateSchedule Cifar(double minimum = 0) => new CifarSchedule(minimum);

    /// <summary>
    /// The paper's reference code's <c>imagenetschedular</c>, a step schedule: the base rate times 0.1 every 30 epochs, never
    /// below <paramref name="minimum"/>.
    /// </summary>
    public static LearningRateSchedule ImageNet(double minimum = 0) => Step(30, 0.1, minimum);

    /// <summary>The base rate throughout.</summary>
    public static LearningRateSchedule Constant { get; } = new ConstantSchedule();

    /// <summary>The learning rate at a point of training.</summary>
    /// <param name="baseRate">The configured (maximum) learning rate.</param>
    /// <param name="epoch">0-based epoch.</param>
    /// <param name="step">0-based step within the epoch.</param>
    /// <param name="stepsPerEpoch">Steps per epoch.</param>
    /// <param name="epochs">Total epochs.</param>
    public abstract double At(double baseRate, int epoch, int step, int stepsPerEpoch, int epochs);

    /// <summary>Throws when a parameter of the schedule is out of range, naming it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When a parameter is invalid.</exception>
    public virtual void Validate()
    {
    }

    private protected static void Check(bool ok, string parameter, object value, string expected)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(parameter, value,
                $"Learning-rate schedule parameter {parameter} = {value} must be {expected}.");
        }
    }

    private protected static void CheckMinimum(double minimum) =>
        Check(minimum >= 0 && double.IsFinite(minimum), "Minimum", minimum, "a finite number, not negative");
}

/// <summary>Linear warm-up, then cosine decay per step.</summary>
/// <param name="WarmupEpochs">Epochs of linear warm-up from 0 (may be fractional; 0 disables it).</param>
/// <param name="Minimum">Learning rate at the end of training.</param>
public sealed record CosineSchedule(double WarmupEpochs, double Minimum) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double At(double baseRate, int epoch, int step, int stepsPerEpoch, int epochs)
    {
        double progress = epoch + (double)step / stepsPerEpoch;
        double warmup = Math.Min(WarmupEpochs, epochs);
        if (progress < warmup)
        {
            return baseRate * (progress + 1.0 / stepsPerEpoch) / warmup;
        }

        double t = epochs <= warmup ? 1 : (progress - warmup) / (epochs - warmup);
        return Minimum + (baseRate - Minimum) * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(t, 0, 1)));
    }

    /// <inheritdoc />
    public override void Validate()
    {
        Check(WarmupEpochs >= 0 && double.IsFinite(WarmupEpochs), nameof(WarmupEpochs), WarmupEpochs, "a finite number, not negative");
        CheckMinimum(Minimum);
    }
}

/// <summary>Step decay per epoch, clamped below.</summary>
/// <param name="Interval">Epochs between decays.</param>
/// <param name="Multiplier">Factor applied at each decay (0.1 or 0.5; above 1 grows the rate, the paper's README's bug).</param>
/// <param name="Minimum">Lower clamp.</param>
public sealed record StepSchedule(int Interval, double Multiplier, double Minimum) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double At(double baseRate, int epoch, int step, int stepsPerEpoch, int epochs) =>
        Math.Max(Minimum, baseRate * Math.Pow(Multiplier, epoch / Math.Max(1, Interval)));

    /// <inheritdoc />
    public override void Validate()
    {
        Check(Interval >= 1, nameof(Interval), Interval, "at least 1");
        Check(Multiplier > 0 && double.IsFinite(Multiplier), nameof(Multiplier), Multiplier, "a positive number (0.1 or 0.5 to decay)");
        CheckMinimum(Minimum);
    }
}

/// <summary>The paper's reference code's <c>cifarschedular</c>: x1 for epochs 0-149, x0.1 from 150, x0.01 from 225, clamped below.</summary>
/// <param name="Minimum">Lower clamp (the paper's reference code's <c>minlr</c>).</param>
public sealed record CifarSchedule(double Minimum) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double At(double baseRate, int epoch, int step, int stepsPerEpoch, int epochs) =>
        Math.Max(Minimum, baseRate * (epoch >= 225 ? 0.01 : epoch >= 150 ? 0.1 : 1));

    /// <inheritdoc />
    public override void Validate() => CheckMinimum(Minimum);
}

/// <summary>A constant learning rate.</summary>
public sealed record ConstantSchedule : LearningRateSchedule
{
    /// <inheritdoc />
    public override double At(double baseRate, int epoch, int step, int stepsPerEpoch, int epochs) => baseRate;
}
