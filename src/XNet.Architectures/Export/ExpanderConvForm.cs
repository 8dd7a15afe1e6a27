namespace XNet.Architectures.Export;

/// <summary>How an expander convolution is written into an exported graph; both forms compute exactly the same function.</summary>
public enum ExpanderConvForm
{
    /// <summary>One ordinary convolution over the dense weight, zero where the graph has no connection.</summary>
    DenseWeight,

    /// <summary>
    /// A Gather of each output block's D input channels, then a convolution with G groups over the compact weight
    /// (G = <see cref="Graphs.ExpanderGraph.BlockCount"/>: C_out for the paper's graphs, r C_in / D for structured ones).
    /// </summary>
    GatherGroupedConv,
}
