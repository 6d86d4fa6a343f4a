"""``python -m latency_bench [--quick] [--dsp cpu|cuda|all] [--out DIR] [--blocks N]``."""
from __future__ import annotations

import argparse
import shlex
import sys

import torch

from . import cells, run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m latency_bench", description=(
        "Per-block latency of rtfx's IIR and convolution kernels and bundled presets against "
        "scipy.signal (sosfilt, lfilter with zi) and, when installed, TorchFX, torchaudio and "
        "pedalboard, side by side in one process; then offline throughput in TorchFX's paper "
        "setup. Writes core.json, core.md and PNG plots."))
    ap.add_argument("--quick", action="store_true",
                    help="fewer cells, 200 blocks, 1 s offline signals (< 1 min on 2 cores)")
    ap.add_argument("--dsp", choices=["cpu", "cuda", "all"], default=None,
                    help="rtfx device(s) to time; default: all when CUDA is available, else cpu")
    ap.add_argument("--out", default=None,
                    help="output folder (default latency_bench/results/<machine>/, with --quick "
                         "latency_bench/results/<machine>/quick/, not committed)")
    ap.add_argument("--blocks", type=int, default=None,
                    help="timed blocks per cell (default 1000; --quick 200)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up blocks (default 50; --quick 20)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of timed blocks one implementation may spend in one cell; slower "
                         "ones get fewer blocks, said in the output (default 4; --quick 1)")
    ap.add_argument("--offline-budget", type=float, default=None,
                    help="seconds one implementation may take in one offline cell; predicted "
                         "slower (from a 1 s probe): skipped, said in the output (default 15; --quick 5)")
    ap.add_argument("--only", choices=["latency", "offline"], default=None,
                    help="run one part; the other part of an existing core.json in the output "
                         "folder (same machine) is kept, so the two can run as separate commands")
    ap.add_argument("--offline-chains", default=None,
                    help="offline: only these chains' cells (comma-separated: iir, fir, butter8); "
                         "the other rows of an existing core.json in the output folder are kept")
    ap.add_argument("--no-offline", action="store_true",
                    help="skip the offline throughput grid (TorchFX's paper setup)")
    args = ap.parse_args(argv)

    cuda = torch.cuda.is_available()
    dsp = args.dsp or ("all" if cuda else "cpu")
    if dsp in ("cuda", "all") and not cuda:
        if dsp == "cuda":
            ap.error("--dsp cuda: no CUDA device is available")
        print("no CUDA device: timing rtfx on CPU only", file=sys.stderr)
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"] if cuda else ["cpu"]}[dsp]
    grid = cells.quick_grid() if args.quick else cells.full_grid()
    blocks = args.blocks or (200 if args.quick else 1000)
    warmup = args.warmup if args.warmup is not None else (20 if args.quick else 50)
    command = "python -m latency_bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    budget = args.budget if args.budget is not None else (1.0 if args.quick else 4.0)
    offline_grid = None if args.no_offline or args.only == "latency" else ("quick" if args.quick else "full")
    if args.only == "offline":
        grid = []
    doc, jpath, mpath = run(grid, devices, blocks, warmup, args.out, command=command.strip(),
                            log=sys.stderr, subdir="quick" if args.quick else "", budget_s=budget,
                            offline_grid=offline_grid, offline_budget_s=args.offline_budget,
                            keep_other_part=args.only is not None,
                            offline_chains=args.offline_chains.split(",") if args.offline_chains else None)
    print(mpath.read_text())
    print(f"wrote {jpath} and {mpath}", file=sys.stderr)
    try:
        from .plots import plot_file
    except ImportError as exc:   # matplotlib is optional (the `test` extra)
        print(f"no plots ({exc}); pip install matplotlib, then "
              f"python -m latency_bench.plots {jpath}", file=sys.stderr)
    else:
        for p in plot_file(jpath):
            print(f"wrote {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
