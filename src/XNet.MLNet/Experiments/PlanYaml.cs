using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace XNet.MLNet.Experiments;

/// <summary>
/// Turns a plan written in YAML into the JSON text <see cref="ExperimentPlan.Load"/> reads, so that both spellings go
/// through one reader and one set of checks. Plain scalars take YAML 1.2's core schema (<c>15</c> is a number,
/// <c>true</c> a Boolean, <c>null</c> or <c>~</c> nothing); quoted ones stay strings.
/// </summary>
internal static class PlanYaml
{
    // A plan is a few levels deep; an alias that refers to itself would otherwise recurse without end.
    private const int MaxDepth = 32;

    // YAML 1.2's decimal form (the core schema's float without .inf and .nan): digits with an optional point and exponent.
    private static readonly Regex DecimalForm = new(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\z", RegexOptions.CultureInvariant);

    /// <summary>The JSON text of the single YAML document in <paramref name="yaml"/>.</summary>
    /// <exception cref="YamlException">When the text is not YAML, holds no or several documents, or nests too deep.</exception>
    public static string ToJson(string yaml)
    {
        var stream = new YamlStream();
        var parser = new PositionParser(new Parser(new StringReader(yaml)));
        try
        {
            stream.Load(parser);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this, without a position, for some malformed text (a '[' left open over a line end).
            throw new YamlException(parser.Last, parser.Last, "the text cannot be read as YAML after this point (a bracket left open?)");
        }

        if (stream.Documents.Count != 1)
        {
            throw new YamlException($"a plan is one YAML document; this text holds {stream.Documents.Count}");
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, stream.Documents[0].RootNode, 0);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Write(Utf8JsonWriter writer, YamlNode node, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new YamlException(node.Start, node.End, $"the plan nests deeper than {MaxDepth} levels (an alias that refers to itself?)");
        }

        switch (node)
        {
            case YamlMappingNode mapping:
                writer.WriteStartObject();
                foreach (var (key, value) in mapping.Children)
                {
                    writer.WritePropertyName(key is YamlScalarNode { Value: string name }
                        ? name
                        : throw new YamlException(key.Start, key.End, "a plan's keys are plain names"));
                    Write(writer, value, depth + 1);
                }

                writer.WriteEndObject();
                break;
            case YamlSequenceNode sequence:
                writer.WriteStartArray();
                foreach (var item in sequence.Children)
                {
                    Write(writer, item, depth + 1);
                }

                writer.WriteEndArray();
                break;
            case YamlScalarNode scalar:
                WriteScalar(writer, scalar);
                break;
            default:
                throw new YamlException(node.Start, node.End, $"unexpected YAML node {node.NodeType}");
        }
    }

    private static void WriteScalar(Utf8JsonWriter writer, YamlScalarNode scalar)
    {
        string text = scalar.Value ?? "";
        if (scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
        {
            writer.WriteStringValue(text);
        }
        else if (text is "" or "~" or "null" or "Null" or "NULL")
        {
            writer.WriteNullValue();
        }
        else if (text is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
        {
            writer.WriteBooleanValue(char.ToLowerInvariant(text[0]) == 't');
        }
        else if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long whole))
        {
            writer.WriteNumberValue(whole);
        }
        else if (DecimalForm.IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) &&
                 double.IsFinite(number))
        {
            writer.WriteNumberValue(number);
        }
        else
        {
            writer.WriteStringValue(text);
        }
    }

    /// <summary>A parser that remembers where its last event ended, for the errors that come without a position.</summary>
    private sealed class PositionParser(IParser inner) : IParser
    {
        public Mark Last { get; private set; } = Mark.Empty;

        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool moved = inner.MoveNext();
            Last = inner.Current?.End ?? Last;
            return moved;
        }
    }
}
