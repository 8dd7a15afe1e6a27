#!/usr/bin/env bash
# Packs XNet.Architectures and XNet.MLNet into a local folder feed (artifacts/packages) and consumes them as a user
# would: a throwaway console project outside the repository, referencing only XNet.MLNet (the version just packed),
# libtorch-cpu-linux-x64 and Microsoft.ML, trains an x-resnet-8-2 for one epoch on generated images, evaluates it with
# ML.NET, saves and reloads the model and checks that both score alike. It also publishes the project and checks that
# the package's buildTransitive fix marked GLIBCXX_3.4.32 weak in the build and publish copies of libLibTorchSharp.so.
# The consumer targets net10.0 and net8.0 (LTS); the net8.0 build is published self-contained, so it runs on the .NET 8
# runtime itself even on a machine that has only .NET 10 installed.
#
# Prints "pack-and-consume: PASS ..." and exits 0, or "pack-and-consume: FAIL ..." and exits 1. See docs/packaging.md.
#   XNET_KEEP_CONSUMER=1  keep the temporary consumer folder (its path is printed)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
started=$SECONDS

fail() {
  echo "pack-and-consume: FAIL: $*" >&2
  exit 1
}

command -v dotnet >/dev/null 2>&1 || fail "dotnet (the .NET 10 SDK) is required"

# A unique pre-release version per run, so NuGet can never serve a stale copy of an earlier pack from its cache.
# The version prefix itself comes from Directory.Build.props (VersionPrefix).
suffix="local.$(date -u +%Y%m%d%H%M%S).$$"
feed="$repo/artifacts/packages"
mkdir -p "$feed"
rm -f "$feed"/XNet.Architectures.*.nupkg "$feed"/XNet.Architectures.*.snupkg "$feed"/XNet.MLNet.*.nupkg "$feed"/XNet.MLNet.*.snupkg

# Versions of the other packages the consumer references: the ones this repository builds and tests with.
package_version() {
  sed -n "s/.*<PackageVersion Include=\"$1\" Version=\"\([^\"]*\)\".*/\1/p" "$repo/Directory.Packages.props"
}
libtorch_version="$(package_version libtorch-cpu-linux-x64)"
mlnet_version="$(package_version Microsoft.ML)"
[ -n "$libtorch_version" ] && [ -n "$mlnet_version" ] || fail "could not read package versions from Directory.Packages.props"

global_packages="$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: //p')"
global_packages="${global_packages%/}"
[ -n "$global_packages" ] || fail "could not find NuGet's global packages folder"

work="$(mktemp -d "${TMPDIR:-/tmp}/xnet-consumer.XXXXXX")"
consumer="$work/consumer"
mkdir -p "$consumer"
version=""
cleanup() {
  # Only this run's versions leave the global cache; everything else in it stays.
  if [ -n "$version" ]; then
    rm -rf "$global_packages/xnet.architectures/$version" "$global_packages/xnet.mlnet/$version"
    rmdir --ignore-fail-on-non-empty "$global_packages/xnet.architectures" "$global_packages/xnet.mlnet" 2>/dev/null || true
  fi
  if [ "${XNET_KEEP_CONSUMER:-0}" = "1" ]; then
    echo "consumer project kept in $consumer"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

echo "== dotnet pack (VersionSuffix=$suffix) -> $feed"
# Built under a temporary artifacts path, so the pack neither reads nor rewrites the repository's bin/ and obj/ (a test
# run or an IDE may be using them at the same time).
for project in XNet.Architectures XNet.MLNet; do
  dotnet pack "$repo/src/$project/$project.csproj" -c Release -p:VersionSuffix="$suffix" \
    --artifacts-path "$work/pack" -o "$feed" -v q -nologo || fail "dotnet pack $project failed"
done
package="$(ls "$feed"/XNet.MLNet.*"$suffix".nupkg 2>/dev/null | head -n 1 || true)"
[ -n "$package" ] || fail "no XNet.MLNet package with suffix $suffix in $feed"
version="$(basename "$package" .nupkg)"
version="${version#XNet.MLNet.}"
[ -f "$feed/XNet.Architectures.$version.nupkg" ] || fail "no XNet.Architectures.$version.nupkg in $feed"
echo "packed XNet.Architectures and XNet.MLNet $version"

echo "== consumer project in $consumer"
# Empty Directory.Build.* files stop MSBuild's upward search: nothing from the folders above leaks into the consumer.
echo '<Project />' > "$consumer/Directory.Build.props"
echo '<Project />' > "$consumer/Directory.Build.targets"
# The local feed is added to the feeds NuGet already uses on this machine (user-level NuGet.Config), not in place of them.
cat > "$consumer/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="xnet-local" value="$feed" />
  </packageSources>
</configuration>
EOF
cat > "$consumer/XNet.Consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFrameworks>net10.0;net8.0</TargetFrameworks>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="XNet.MLNet" Version="$version" />
    <PackageReference Include="libtorch-cpu-linux-x64" Version="$libtorch_version" />
    <PackageReference Include="Microsoft.ML" Version="$mlnet_version" />
  </ItemGroup>
</Project>
EOF
cat > "$consumer/Program.cs" <<'EOF'
// Trains, evaluates, saves and reloads an X-Net through the packages only, as a user of XNet.MLNet would.
using Microsoft.ML;
using Microsoft.ML.Data;
using XNet.MLNet;

const int Classes = 4;
const int Side = 28;
string modelPath = Path.Combine(AppContext.BaseDirectory, "consumer.xnet");
try
{
    var ml = new MLContext(seed: 0);
    IDataView train = ml.Data.LoadFromEnumerable(Generate(512, seed: 1));
    IDataView test = ml.Data.LoadFromEnumerable(Generate(128, seed: 2));

    var trainer = ml.MulticlassClassification.Trainers.XNet(architecture: "x-resnet-8-2", epoch: 1, batchSize: 16,
        learningRate: 0.05f);
    using XNetTransformer transformer = trainer.Fit(train);

    var metrics = ml.MulticlassClassification.Evaluate(transformer.Transform(test));
    long counted = (long)metrics.ConfusionMatrix.Counts.Sum(row => row.Sum());
    Console.WriteLine($".NET {Environment.Version}");
    Console.WriteLine($"micro-accuracy {metrics.MicroAccuracy:F4}, macro-accuracy {metrics.MacroAccuracy:F4}, " +
                      $"log-loss {metrics.LogLoss:F4}, {counted} test rows");

    XNetModelFile.Save(transformer.Model, modelPath);
    using XNetTransformer loaded = new XNetTransformer(XNetModelFile.Load(modelPath));
    Console.WriteLine($"saved and reloaded {modelPath} ({new FileInfo(modelPath).Length} bytes)");

    float[][] before = transformer.Transform(test).GetColumn<float[]>("Score").ToArray();
    float[][] after = loaded.Transform(test).GetColumn<float[]>("Score").ToArray();
    uint[] predictedBefore = transformer.Transform(test).GetColumn<uint>("PredictedLabel").ToArray();
    uint[] predictedAfter = loaded.Transform(test).GetColumn<uint>("PredictedLabel").ToArray();
    float maxDifference = before.Zip(after).SelectMany(pair => pair.First.Zip(pair.Second, (a, b) => Math.Abs(a - b))).Max();
    int disagreements = predictedBefore.Zip(predictedAfter).Count(pair => pair.First != pair.Second);
    Console.WriteLine($"reloaded model: {disagreements} of {predictedBefore.Length} predictions differ, " +
                      $"largest score difference {maxDifference:G3}");

    var problems = new List<string>();
    if (counted != 128) problems.Add($"the confusion matrix counts {counted} rows, expected 128");
    if (!double.IsFinite(metrics.LogLoss)) problems.Add("the log-loss is not finite");
    if (metrics.MicroAccuracy <= 1.0 / Classes) problems.Add($"micro-accuracy {metrics.MicroAccuracy:F4} is not above chance");
    if (before.Length != 128 || after.Length != 128) problems.Add("a model did not score every test row");
    if (disagreements != 0) problems.Add($"{disagreements} predictions differ after reloading");
    if (!(maxDifference <= 1e-5f)) problems.Add($"scores differ by {maxDifference} after reloading");
    foreach (string problem in problems) Console.WriteLine($"problem: {problem}");
    Console.WriteLine(problems.Count == 0 ? "PASS" : "FAIL");
    return problems.Count == 0 ? 0 : 1;
}
catch (Exception ex)
{
    Console.WriteLine(ex);
    Console.WriteLine("FAIL");
    return 1;
}

// A bright square in one of four quadrants (the label) on a noisy background, raw 0-255 pixels.
static IEnumerable<ImageRow> Generate(int count, int seed)
{
    var random = new Random(seed);
    for (int i = 0; i < count; i++)
    {
        uint label = (uint)(i % Classes);
        var pixels = new float[Side * Side];
        for (int p = 0; p < pixels.Length; p++) pixels[p] = random.Next(0, 60);
        int top = (label / 2 == 0 ? 2 : 16) + random.Next(0, 3);
        int left = (label % 2 == 0 ? 2 : 16) + random.Next(0, 3);
        for (int y = top; y < top + 8; y++)
            for (int x = left; x < left + 8; x++)
                pixels[y * Side + x] = random.Next(180, 256);
        yield return new ImageRow { Label = label, Features = pixels };
    }
}

public sealed class ImageRow
{
    // LoadFromEnumerable takes a KeyType property as 0-based: 0..3 here become the keys 1..4.
    [KeyType(4)]
    public uint Label { get; set; }

    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];
}
EOF

echo "== dotnet build (restores XNet.MLNet $version from $feed)"
dotnet build "$consumer/XNet.Consumer.csproj" -c Release -v q -nologo || fail "the consumer project did not build"

assets="$consumer/obj/project.assets.json"
grep -q "\"XNet.Architectures/$version\"" "$assets" || fail "XNet.Architectures $version did not come in transitively"
grep -q "buildTransitive/XNet.Architectures.targets" "$consumer/obj/XNet.Consumer.csproj.nuget.g.targets" \
  || fail "NuGet did not import XNet.Architectures' buildTransitive targets"

# On a system whose libstdc++ lacks GLIBCXX_3.4.32 (Debian 12), the output copy must carry the WEAK flag; the cached
# original must not. readelf -V prints one "Name: GLIBCXX_3.4.32  Flags: WEAK" line for a weak need.
check_weak() {
  local library="$1" expect="$2"
  [ -f "$library" ] || fail "$library is missing"
  local flags
  flags="$(readelf -V "$library" | grep 'Name: GLIBCXX_3.4.32' || true)"
  if [ "$expect" = weak ]; then
    case "$flags" in *WEAK*) echo "GLIBCXX_3.4.32 marked weak: $library" ;; *) fail "GLIBCXX_3.4.32 not weak in $library: $flags" ;; esac
  else
    case "$flags" in *WEAK*) fail "the NuGet cache copy $library was modified" ;; *) echo "NuGet cache copy untouched: $library" ;; esac
  fi
}
system_libstdcxx="$(ls /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6 2>/dev/null | head -n 1 || true)"
output="$consumer/bin/Release/net10.0"
if command -v readelf >/dev/null 2>&1 && [ -n "$system_libstdcxx" ] && ! grep -q 'GLIBCXX_3\.4\.32' "$system_libstdcxx"; then
  check_native=1
  check_weak "$output/runtimes/linux-x64/native/libLibTorchSharp.so" weak
  torchsharp_version="$(sed -n 's/.*"TorchSharp\/\([^"]*\)".*/\1/p' "$assets" | head -n 1)"
  check_weak "$global_packages/torchsharp/$torchsharp_version/runtimes/linux-x64/native/libLibTorchSharp.so" pristine
else
  check_native=0
  echo "readelf missing or system libstdc++ has GLIBCXX_3.4.32: the native fix is not needed here, not checked"
fi

echo "== dotnet run"
set +e
dotnet "$output/XNet.Consumer.dll" | tee "$consumer/run.log"
run_status=${PIPESTATUS[0]}
set -e
[ "$run_status" -eq 0 ] || fail "the consumer exited with $run_status"
grep -qx PASS "$consumer/run.log" || fail "the consumer did not print PASS"

echo "== dotnet publish"
dotnet publish "$consumer/XNet.Consumer.csproj" -c Release -f net10.0 --no-build -o "$consumer/publish" -v q -nologo \
  || fail "the consumer project did not publish"
if [ "$check_native" = 1 ]; then
  check_weak "$consumer/publish/runtimes/linux-x64/native/libLibTorchSharp.so" weak
fi

echo "== net8.0: dotnet publish --self-contained, run on the .NET 8 runtime"
dotnet publish "$consumer/XNet.Consumer.csproj" -c Release -f net8.0 -r linux-x64 --self-contained -o "$consumer/publish-net8" \
  -v q -nologo || fail "the net8.0 consumer did not build and publish"
if [ "$check_native" = 1 ]; then
  check_weak "$consumer/publish-net8/libLibTorchSharp.so" weak
fi
set +e
"$consumer/publish-net8/XNet.Consumer" | tee "$consumer/run-net8.log"
run_status=${PIPESTATUS[0]}
set -e
[ "$run_status" -eq 0 ] || fail "the net8.0 consumer exited with $run_status"
grep -q '^\.NET 8\.' "$consumer/run-net8.log" || fail "the net8.0 consumer did not run on .NET 8"
grep -qx PASS "$consumer/run-net8.log" || fail "the net8.0 consumer did not print PASS"

echo "pack-and-consume: PASS (XNet.MLNet $version, $((SECONDS - started)) s)"
