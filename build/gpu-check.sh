#!/usr/bin/env bash
# The GPU check, in two phases (docs/gpu.md):
#
#   build/gpu-check.sh prepare   here, with the .NET SDK: publishes tests/XNet.GpuCheck self-contained for linux-x64 with
#                                the 'external' libtorch backend (no libtorch inside: the device machine's PyTorch provides
#                                it) and packs it into artifacts/gpu-check/xnet-gpu-check.tar.xz, which must stay under the
#                                device tool's 64 MiB carry limit.
#   build/gpu-check.sh run       on the device machine (no .NET, no network): unpacks the archive, points LD_LIBRARY_PATH
#                                at the local PyTorch's torch/lib, runs the .NET check (forward parity GPU vs CPU and
#                                training images/s of x-resnet-20-4 and x-densenet-bc-40-24-2), then the PyTorch reference
#                                (masked expander convolutions, as the paper's code) on the same GPU.
#
# Environment for 'run': DEVICE (default cuda), PYTHON (default: the first python3 that imports torch),
# TORCH_LIB (default: <torch package>/lib), IMAGES / EPOCHS / BATCH_SIZE (defaults 4096 / 3 / 128), MODELS (the .NET check's
# models, default x-resnet-20-4,x-densenet-bc-40-24-2; a name may end in @grouped).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/build/device-package.sh"
out="$root/artifacts/gpu-check"
archive="$out/xnet-gpu-check.tar.xz"

prepare() {
    rm -rf "$out/app"
    mkdir -p "$out"
    dotnet publish "$root/tests/XNet.GpuCheck/XNet.GpuCheck.csproj" -c Release -r linux-x64 --self-contained true \
        -p:XNetTorchBackend=external -o "$out/app" -nologo -v:q
    if ls "$out/app" | grep -q '^libtorch'; then
        echo "error: the publish folder contains libtorch; the external backend must not ship it" >&2
        exit 1
    fi
    tar -C "$out" -cf - app | xz -9 -T2 > "$archive.tmp"
    mv "$archive.tmp" "$archive"
    rm -rf "$out/app"
    check_package_size "$archive"
}


run() {
    [[ -f "$archive" ]] || { echo "error: $archive is missing; run 'build/gpu-check.sh prepare' first" >&2; exit 1; }
    local python torch_lib status=0
    work="$(mktemp -d)"
    trap 'rm -rf "${work:-}"' EXIT
    tar -C "$work" -xJf "$archive"
    python="$(find_python)"
    if [[ -z "$python" ]]; then
        echo "error: no python3 with PyTorch found; set PYTHON or TORCH_LIB" >&2
    else
        echo "python: $python, $("$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)')"
    fi
    torch_lib="${TORCH_LIB:-$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}"
    echo "libtorch: $torch_lib"
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

    echo "== XNet.GpuCheck (TorchSharp 0.107, built for libtorch 2.10) =="
    LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/app/XNet.GpuCheck" \
        --device "${DEVICE:-cuda}" --images "${IMAGES:-4096}" --epochs "${EPOCHS:-3}" --batch-size "${BATCH_SIZE:-128}" \
        --models "${MODELS:-x-resnet-20-4,x-densenet-bc-40-24-2}" || status=$?
    echo "XNet.GpuCheck exit code: $status"

    if [[ -n "$python" ]]; then
        echo "== PyTorch reference (masked expander convolutions) =="
        "$python" "$root/tests/XNet.GpuCheck/pytorch_reference.py" --device "${DEVICE:-cuda}" \
            --images "${IMAGES:-4096}" --epochs "${EPOCHS:-3}" --batch-size "${BATCH_SIZE:-128}" || status=$?
    fi
    return "$status"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: build/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
