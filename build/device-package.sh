# Shared by build/gpu-check.sh and build/gpu-grid.sh (sourced, not run): what a package for a GPU machine without .NET
# or network needs on both sides.

# Stops unless the archive $1 is under 60 MiB, which leaves room under the 64 MiB a device command may carry.
check_package_size() {
    local bytes
    bytes=$(stat -c %s "$1")
    echo "packed $1: $((bytes / 1024 / 1024)) MiB ($bytes bytes)"
    if (( bytes > 60 * 1024 * 1024 )); then
        echo "error: the archive is over 60 MiB; the device tool carries at most 64 MiB" >&2
        exit 1
    fi
}

# The first python that imports torch (PYTHON first): its torch/lib is the libtorch the 'external' backend loads.
find_python() {
    for candidate in ${PYTHON:-} python3 /usr/bin/python3 /usr/local/bin/python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import torch' >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
}
