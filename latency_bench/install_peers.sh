#!/usr/bin/env bash
# Install the optional latency_bench peers (pedalboard, TorchFX, torchaudio) into a Python
# environment WITHOUT touching its torch: every install is --no-deps.
#
#   latency_bench/install_peers.sh fetch DIR [PYTHON_VERSION [TORCH_VERSION]]
#       (machine with internet) download into DIR what `install` needs, for the target's Python
#       (e.g. 3.12) and torch (e.g. 2.11.0): wheels of pedalboard, annotated-types, soundfile,
#       cffi, pycparser, scikit-build-core, pathspec, packaging, cmake, ninja,
#       torchaudio==TORCH_VERSION, and TorchFX's sdist.
#   latency_bench/install_peers.sh install [DIR]
#       install them, from DIR only (--no-index --find-links DIR) when DIR is given, else from
#       the index. TorchFX is built from its sdist against the torch already installed
#       (--no-build-isolation); its CUDA kernels are built when torch has CUDA and nvcc is found
#       (set TORCHFX_CUDA_ARCHITECTURES, e.g. 90 for H100/H200), else a CPU-only build.
#       torchaudio is installed only if its version matches torch's major.minor.
#
# PYTHON defaults to .venv/bin/python when present, else python3. For a system Python that
# pip calls "externally managed", set PIP_BREAK_SYSTEM_PACKAGES=1.
set -euo pipefail

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
TORCHFX_VERSION=${TORCHFX_VERSION:-0.8.0}
PURE="annotated-types soundfile cffi pycparser scikit-build-core pathspec packaging"
BUILD_TOOLS="cmake ninja"   # installed only where the machine has no cmake

torch_version() { "$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])'; }

fetch() {
    local dir=$1 py=${2:-$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}
    local tv=${3:-$(torch_version)}
    mkdir -p "$dir"
    local target=(--python-version "$py" --only-binary :all: --platform manylinux_2_28_x86_64
                  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any)
    "$PYTHON" -m pip download --no-deps "${target[@]}" -d "$dir" pedalboard $PURE $BUILD_TOOLS
    "$PYTHON" -m pip download --no-deps "${target[@]}" -d "$dir" "torchaudio==$tv" \
        || echo "no torchaudio $tv wheel for Python $py: torchaudio will be reported missing" >&2
    # The sdist: pip prepares its metadata, which needs scikit-build-core and torch importable here.
    "$PYTHON" -m pip install --no-deps scikit-build-core pathspec
    "$PYTHON" -m pip download --no-deps --no-build-isolation --no-binary :all: -d "$dir" "torchfx==$TORCHFX_VERSION"
    ls -l "$dir"
}

install() {
    local src=()
    [ $# -ge 1 ] && src=(--no-index --find-links "$1")
    local pip=("$PYTHON" -m pip install --no-deps "${src[@]}")
    local before; before=$("$PYTHON" -c 'import torch; print(torch.__version__)')
    "${pip[@]}" pedalboard $PURE
    command -v cmake >/dev/null || "${pip[@]}" $BUILD_TOOLS
    local tv; tv=$(torch_version)
    if "${pip[@]}" "torchaudio==${tv%.*}.*"; then :; else
        echo "no torchaudio ${tv%.*}.x for torch $tv: torchaudio will be reported missing" >&2
    fi
    if ! "$PYTHON" -c 'import torch, shutil, sys; sys.exit(0 if torch.cuda.is_available() and shutil.which("nvcc") else 1)'; then
        export TORCHFX_NO_CUDA=1
        echo "building TorchFX for CPU only (no CUDA torch or no nvcc)" >&2
    fi
    MAX_JOBS=${MAX_JOBS:-4} "${pip[@]}" --no-build-isolation --no-binary torchfx "torchfx==$TORCHFX_VERSION"
    local after; after=$("$PYTHON" -c 'import torch; print(torch.__version__)')
    [ "$before" = "$after" ] || { echo "torch changed from $before to $after" >&2; exit 1; }
    "$PYTHON" -c 'from latency_bench.machine import peer_versions; print(peer_versions())'
}

case "${1:-}" in
    fetch) shift; fetch "$@" ;;
    install) shift; install "$@" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac
