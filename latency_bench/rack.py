"""``python -m latency_bench.rack``: what each effect and each bundled preset costs per block.

Every registered effect (built from its ``example_args``) and every preset in
``assets/presets/`` runs 2-channel blocks of 64, 128 and 256 frames of a guitar-like signal on
one thread, as the live callback would (CUDA: synchronised after each block). Writes
``rack.json`` and ``rack.md`` (median, p99, load = median / deadline) next to ``core.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .machine import machine_details, write_results
from .timing import time_steps

RATE = 48000
BLOCKS = (64, 128, 256)
PRESET_DIR = Path(__file__).resolve().parents[1] / "assets" / "presets"


def signal(frames: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Decaying plucked-like tones with a little noise, peak about 0.5."""
    t = np.arange(frames) / RATE
    rng = np.random.default_rng(seed)
    tone = sum(np.sin(2 * np.pi * f * t) for f in (82.4, 123.5, 164.8, 246.9))
    envelope = np.exp(-2 * (t % 1.0))
    x = 0.12 * tone * envelope + 0.005 * rng.standard_normal(t.size)
    return np.stack([np.roll(x, 17 * c) for c in range(channels)]).astype(np.float32)


def time_blocks(effect, frames: int, device: str, blocks: int, warmup: int) -> dict:
    """Per-block wall time of ``effect.process`` (prepared here) in microseconds."""
    from rtfx import ProcessSpec

    effect.prepare(ProcessSpec(RATE, frames, 2, device))
    x = torch.from_numpy(signal(frames * 256)).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step(i: int) -> None:
        start = (i % 256) * frames
        effect.process(x[:, start : start + frames])
        sync()

    stats = time_steps(step, blocks, warmup)
    stats["load_p50"] = stats["p50_us"] / (frames / RATE * 1e6)
    return stats


def run(device: str, blocks: int, warmup: int) -> dict:
    from rtfx import EFFECTS, load_preset

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    rows = []
    subjects = [(f"effect {name}", lambda cls=cls: cls(**cls.example_args)) for name, cls in sorted(EFFECTS.items())]
    subjects += [(f"preset {p.stem}", lambda p=p: load_preset(p)) for p in sorted(PRESET_DIR.glob("*.json"))]
    for label, make in subjects:
        row = {"name": label, "device": device}
        for frames in BLOCKS:
            try:
                row[str(frames)] = time_blocks(make(), frames, device, blocks, warmup)
            except Exception as error:  # reported, never dropped
                row[str(frames)] = {"error": f"{type(error).__name__}: {error}"}
        rows.append(row)
        print(label, " ".join(f"{f}:{row[str(f)].get('p50_us', float('nan')):.0f}us" for f in BLOCKS), file=sys.stderr)
    return {"machine": machine_details(), "samplerate": RATE, "channels": 2, "blocks": blocks, "rows": rows}


def markdown(doc: dict) -> str:
    m = doc["machine"]
    gpu = m["gpu"].get("name") if isinstance(m.get("gpu"), dict) else None
    lines = [
        "# Rack cost per block",
        "",
        f"{m['cpu']} ({m['cores']} cores){', ' + gpu if gpu else ''}; torch {m['torch']}; {m['date']}.",
        f"2 channels at {doc['samplerate']} Hz, {doc['blocks']} timed blocks per cell, one thread.",
        "Each cell: median / p99 in microseconds (load: median as a share of the block's deadline).",
        "",
        "| subject | device | " + " | ".join(f"{f} frames" for f in BLOCKS) + " |",
        "|---|---|" + "---|" * len(BLOCKS),
    ]
    for row in doc["rows"]:
        cells = []
        for f in BLOCKS:
            s = row[str(f)]
            cells.append(s["error"] if "error" in s else f"{s['p50_us']:.0f} / {s['p99_us']:.0f} ({100 * s['load_p50']:.0f}%)")
        lines.append(f"| {row['name']} | {row['device']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m latency_bench.rack", description=__doc__.splitlines()[0])
    ap.add_argument("--dsp", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--blocks", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--out", default=None, help="folder (default latency_bench/results/<machine>/)")
    args = ap.parse_args(argv)
    if args.dsp == "cuda" and not torch.cuda.is_available():
        ap.error("--dsp cuda: no CUDA device is available")
    doc = run(args.dsp, args.blocks, args.warmup)
    write_results(args.out, [args.dsp], "rack", doc, markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
