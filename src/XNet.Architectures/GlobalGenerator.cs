namespace XNet.Architectures;

/// <summary>
/// TorchSharp's global random generator, which every layer's weight initialisation draws from. Code that seeds it and then
/// builds a network holds <see cref="Gate"/> for both, so that a network built on another thread meanwhile (a second
/// training run in the same process) cannot draw from the seeded stream in between: seeded runs then repeat whatever
/// else the process does at the same time.
/// </summary>
internal static class GlobalGenerator
{
    /// <summary>Held while the global generator is seeded and drawn from.</summary>
    public static readonly object Gate = new();
}
