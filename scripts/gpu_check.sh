#!/bin/bash
# On a lent GPU machine (no internet): the CUDA-marked tests, the rack's CUDA cost, the
# live path eager against one CUDA graph per block (latency_bench.gpu_live), where a graph
# block's time goes (scripts/graph_floor.py) and a paced soak (scripts/gpu_soak.py): ~7 min.
# Usage: bash scripts/gpu_check.sh OUTDIR   (carry the wheels folder .whl/: soundfile, cffi,
# pycparser, jsonschema and its dependencies, pytest, tqdm for that machine's Python).
set -u
out=${1:?output folder}
mkdir -p "$out"
if [ -d .whl ]; then  # the tests' own needs (latency_bench/install_peers.sh installs the peers)
    python3 -m pip install -q --no-index --no-deps --target /tmp/site \
        .whl/soundfile-* .whl/cffi-* .whl/pycparser-* .whl/jsonschema* .whl/attrs-* \
        .whl/referencing-* .whl/rpds_py-* .whl/typing_extensions-* .whl/tqdm-* 2>&1 | tail -2
fi
export PYTHONPATH=/tmp/site:$PWD
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c "import sys, torch, scipy, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'scipy', scipy.__version__, 'numpy', numpy.__version__)"
    python3 -c "import triton; print('triton', triton.__version__)" 2>/dev/null || echo "no triton (fused kernels off)"
    date -u +%Y-%m-%dT%H:%M:%SZ
    git log -1 --format='commit %h %s' 2>/dev/null
} > "$out/machine.txt"
cat "$out/machine.txt"
# Test modules needing a sound card or Qt cannot even be imported there.
python3 -m pytest -q -m cuda -p no:cacheprovider tests \
    --ignore=tests/test_gui.py --ignore=tests/test_gui_screenshot.py --ignore=tests/test_live.py --ignore=tests/test_live_devices.py \
    --ignore=tests/test_live_process.py > "$out/cuda-tests.log" 2>&1
tail -3 "$out/cuda-tests.log"
grep -E "^(FAILED|ERROR)" "$out/cuda-tests.log" | head -40
python3 -m latency_bench.rack --dsp cuda --blocks 300 --out "$out" 2>&1 | tail -2
python3 -m latency_bench.gpu_live --out "$out" 2>&1 | tail -2
python3 scripts/graph_floor.py guitar_lead vocal_live > "$out/graph_floor.txt" 2>&1; head -2 "$out/graph_floor.txt"
python3 scripts/gpu_soak.py guitar_lead 30 64 > "$out/gpu_soak.txt" 2>&1; cat "$out/gpu_soak.txt"
