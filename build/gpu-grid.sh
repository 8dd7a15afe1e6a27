#!/usr/bin/env bash
# The experiment grid of docs/results.md on one GPU machine, in two phases (docs/results.md, "The grid on a GPU"):
#
#   build/gpu-grid.sh prepare [PLAN...]   here, with the .NET SDK: publishes xnet self-contained for linux-x64 with the
#                                         'external' libtorch backend (the GPU machine's PyTorch provides libtorch), leaves
#                                         out ONNX Runtime (a sweep never loads it), splits every plan (default: the
#                                         plans with runs still open, DenseNet and small models over 60 epochs) into one
#                                         plan per model and seed, leaving out the runs that docs/experiments already
#                                         holds finished, seed 0 of every model first, and packs app, plans and the
#                                         Fashion-MNIST files into artifacts/gpu-grid/ (checked to stay under 60 MiB).
#   build/gpu-grid.sh run                 on the GPU machine (no .NET, no network): unpacks, runs JOBS of those plans at a
#                                         time on the GPU until the queue is empty or BUDGET seconds have passed (then the
#                                         runs still going are stopped at a batch boundary), and packs every finished
#                                         run's result.json and metrics.csv into OUT/grid-results.tar.gz.
#   build/gpu-grid.sh collect FILE        here: unpacks those results into docs/experiments/<plan>/runs and rewrites each
#                                         plan's results.csv, results.md and plots with 'xnet sweep --report'.
#
# Environment for 'run': OUT (default artifacts/gpu-grid/out), JOBS (default 8), BUDGET (seconds, default 480), DEVICE
# (default cuda), PYTHON / TORCH_LIB as in build/gpu-check.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/build/device-package.sh"
out="$root/artifacts/gpu-grid"
data="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"

prepare() {
    local plans=("$@")
    (( ${#plans[@]} )) || plans=("$root/docs/experiments/densenet.json" "$root/docs/experiments/small-model-long.json")
    rm -rf "$out/stage" "$out"/*.tar*
    mkdir -p "$out/stage/plans" "$out/stage/data/fashion-mnist"
    dotnet publish "$root/samples/XNet.Cli/XNet.Cli.csproj" -c Release -r linux-x64 --self-contained true \
        -p:XNetTorchBackend=external -o "$out/stage/app" -nologo -v:q
    # Nothing a sweep loads: ONNX Runtime, the embedded demo data, debugger support and native debug symbols.
    rm -rf "$out/stage/app"/libonnxruntime*.so "$out/stage/app/data" "$out/stage/app"/*.dbg "$out/stage/app"/libmscord*.so \
        "$out/stage/app/createdump"
    if ls "$out/stage/app" | grep -q '^libtorch'; then
        echo "error: the publish folder contains libtorch; the external backend must not ship it" >&2
        exit 1
    fi
    # Unzipped, so that xz compresses them (to about 30 % less than their gzip files).
    for f in "$data"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; do
        gunzip -c "$f" > "$out/stage/data/fashion-mnist/$(basename "$f" .gz)"
    done
    # One plan per (model, seed), named so that every model's seed 0 sorts before any seed 1, plans in the order given;
    # a run whose folder next to its plan (docs/experiments/<plan>/runs/<model>/seed-<n>) has its result is finished.
    python3 - "$out/stage/plans" "${plans[@]}" <<'PY'
import json, os, re, sys
target, plans = sys.argv[1], sys.argv[2:]
for p, path in enumerate(plans):
    text = re.sub(r"^\s*//.*$", "", open(path).read(), flags=re.M)
    plan = json.loads(text)
    name = os.path.splitext(os.path.basename(path))[0]
    for seed in plan["seeds"]:
        for i, model in enumerate(plan["models"]):
            if os.path.exists(os.path.join(os.path.dirname(path), name, "runs", model, f"seed-{seed}", "result.json")):
                print(f"{name}: {model} seed {seed} finished before, left out")
                continue
            one = dict(plan, models=[model], seeds=[seed], data="../data/fashion-mnist")
            with open(os.path.join(target, f"s{seed}-{p}-{name}-{i:02d}-{model}.json"), "w") as f:
                json.dump(one, f, indent=1)
PY
    tar -C "$out/stage" -cf - app plans data | xz -9 -T2 > "$out/xnet-grid.tar.xz.tmp"
    mv "$out/xnet-grid.tar.xz.tmp" "$out/xnet-grid.tar.xz"
    rm -rf "$out/stage"
    check_package_size "$out/xnet-grid.tar.xz"
    echo "$(tar -tJf "$out/xnet-grid.tar.xz" plans | grep -c json) runs"
}


run() {
    [[ -f "$out/xnet-grid.tar.xz" ]] || { echo "error: $out/xnet-grid.tar.xz is missing; run 'build/gpu-grid.sh prepare' first" >&2; exit 1; }
    local results="${OUT:-$out/out}" jobs="${JOBS:-8}" budget="${BUDGET:-480}" python torch_lib
    mkdir -p "$results"
    work="$(mktemp -d)"
    trap 'rm -rf "${work:-}"' EXIT
    tar -C "$work" -xJf "$out/xnet-grid.tar.xz"
    python="$(find_python)"
    torch_lib="${TORCH_LIB:-$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}"
    echo "libtorch: $torch_lib; $(nproc) cores; $jobs runs at a time; budget ${budget} s"
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
    export OMP_NUM_THREADS=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))
    local deadline=$(( SECONDS + budget )) plan name
    for plan in $(ls "$work/plans"/*.json | sort); do
        while (( $(jobs -rp | wc -l) >= jobs )); do
            (( SECONDS < deadline )) || break 2
            sleep 1
        done
        (( SECONDS < deadline )) || break
        name="$(basename "$plan" .json)"
        # The plan's own name (equal-density, densenet) is the output folder, as 'xnet sweep' names it here.
        "$work/app/xnet" sweep "$plan" --device "${DEVICE:-cuda}" --output-dir "$work/out/$(echo "$name" | sed -E 's/^s[0-9]+-[0-9]+-//; s/-[0-9]{2}-.*$//')" \
            > "$results/$name.log" 2>&1 &
    done
    while (( $(jobs -rp | wc -l) > 0 && SECONDS < deadline )); do sleep 1; done
    if (( $(jobs -rp | wc -l) > 0 )); then
        echo "budget reached: stopping $(jobs -rp | wc -l) runs at their next batch boundary"
        kill -TERM $(jobs -rp) 2>/dev/null || true
    fi
    wait || true
    (cd "$work/out" && find . -name result.json -o -name metrics.csv | tar -czf "$results/grid-results.tar.gz" -T -)
    echo "finished runs: $(tar -tzf "$results/grid-results.tar.gz" | grep -c result.json); logs and grid-results.tar.gz in $results"
    tail -n 2 "$results"/*.log | grep -E "test accuracy|error" || true
}

collect() {
    local file="$1" plan
    tar -C "$root/docs/experiments" -xzf "$file"
    for plan in $(tar -tzf "$file" | cut -d/ -f2 | sort -u); do
        dotnet run -c Release --project "$root/samples/XNet.Cli" -- sweep "$root/docs/experiments/$plan.json" --report
    done
}

case "${1:-}" in
    prepare) shift; prepare "$@" ;;
    run) run ;;
    collect) collect "$2" ;;
    *) echo "usage: build/gpu-grid.sh prepare [PLAN...] | run | collect FILE" >&2; exit 2 ;;
esac
