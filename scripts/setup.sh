#!/usr/bin/env bash
# Set up rtfx for development, tests and CI.  Idempotent: a second run only checks.
#
#   scripts/setup.sh            system packages + .venv + torch (CPU) + rtfx[test]
#   scripts/setup.sh --assets   also espeak-ng, used by assets/make_assets.py
#
# Environment:
#   PYTHON=python3        interpreter used to create .venv
#   RTFX_SETUP_FORCE=1    reinstall the project into .venv even if pyproject.toml is unchanged
#   RTFX_SKIP_APT=1       never touch system packages
#
# torch is pinned here, before the project: the project's own `torch>=2.3,<2.15` range, resolved
# on a machine with no torch, would pull a multi-GB CUDA build. torch==2.13.0 is a CPU wheel on
# local disk on our dev/CI machines; on a GPU machine install the torch you want first and this
# script leaves it alone.
set -euo pipefail

TORCH_SPEC="torch==2.13.0"
APT_PACKAGES=(
    libportaudio2   # PortAudio, loaded by python-sounddevice
    jackd2          # JACK server; dummy driver = a real audio clock with no sound card
    libsndfile1     # soundfile
    # Qt offscreen (PyQt6) needs these at import time
    libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3
)
for arg in "$@"; do
    case "$arg" in
        --assets) APT_PACKAGES+=(espeak-ng) ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "setup: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
say() { printf '[setup] %s\n' "$*"; }
t0=$SECONDS

# ---------------------------------------------------------------- system packages
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "system packages: all present"
elif [ "${RTFX_SKIP_APT:-0}" = 1 ]; then
    say "system packages missing (RTFX_SKIP_APT=1, not installing): ${missing[*]}"
elif [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    say "WARNING: not root or no apt-get; install these yourself: ${missing[*]}"
else
    say "apt: installing ${missing[*]}"
    ta=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # jackd2 asks whether to enable realtime priority; answer it up front.
    echo "jackd2 jackd/tweak_rt_limits boolean true" | debconf-set-selections
    # Refresh the package lists only if they are missing or older than a day.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
        say "apt: updating package lists"
        apt-get update -qq
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/rtfx-apt.log 2>&1; then
        # Stale lists (a package version gone from the mirror): update once and retry.
        say "apt: install failed, updating lists and retrying"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/rtfx-apt.log 2>&1 \
            || { tail -30 /tmp/rtfx-apt.log >&2; exit 1; }
    fi
    say "apt: done in $((SECONDS - ta)) s"
fi

# ---------------------------------------------------------------- virtual environment
if [ ! -x "$PY" ]; then
    say "creating .venv with ${PYTHON:-python3} ($(${PYTHON:-python3} --version 2>&1))"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi
PIP=("$PY" -m pip)

# find_spec + metadata instead of `import torch`: same answer, 1 s less per run.
if torch_version="$("$PY" -c 'import importlib.util as u, importlib.metadata as m
assert u.find_spec("torch"); print(m.version("torch"))' 2>/dev/null)"; then
    say "torch: $torch_version already installed"
else
    say "installing $TORCH_SPEC"
    "${PIP[@]}" install -q "$TORCH_SPEC"
fi

# Reinstall the project only when pyproject.toml changed (the install is editable, so code
# changes need nothing), when it is not importable, or when asked to.
STAMP="$VENV/.rtfx-pyproject.sha256"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "${RTFX_SETUP_FORCE:-0}" = 1 ] || [ "$want" != "$have" ] \
        || ! "$PY" -c 'import importlib.metadata as m; m.version("rtfx"); import numpy, scipy, soundfile, pytest' \
            >/dev/null 2>&1; then
    say "installing rtfx (editable) with test extras"
    "${PIP[@]}" install -q -e '.[test]'
    echo "$want" >"$STAMP"
else
    say "rtfx: installed, pyproject.toml unchanged"
fi

say "ready in $((SECONDS - t0)) s: $("$PY" -c 'import sys, importlib.metadata as m
print("python", sys.version.split()[0] + ", torch", m.version("torch") + ", rtfx", m.version("rtfx"))')"
