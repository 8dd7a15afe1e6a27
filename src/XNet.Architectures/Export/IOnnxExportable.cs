namespace XNet.Architectures.Export;

/// <summary>
/// A module that writes its own evaluation-mode forward pass into a graph. Each implementation sits next to the
/// <c>forward</c> it mirrors, in the same class, and a test over every registered model compares the exported graph's
/// output with <c>forward</c>'s.
/// </summary>
internal interface IOnnxExportable
{
    /// <summary>Emits this module's evaluation-mode forward pass and returns the name of its output value.</summary>
    /// <param name="graph">The graph being written.</param>
    /// <param name="input">The name of the input value.</param>
    /// <param name="path">This module's path in the model (names initializers and errors).</param>
    string Export(OnnxGraphBuilder graph, string input, string path);
}
