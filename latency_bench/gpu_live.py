"""``python -m latency_bench.gpu_live``: the live path on the GPU, eager against one CUDA graph.

Each subject runs through ``BlockProcessor`` exactly as the live callback does (interleaved
numpy blocks in and out, the output guard included) four ways in the same process: on the
CPU, on CUDA with eager launches (one pinned copy each way), on CUDA from one graph replay per
block (one pinned copy of input and controls in, one copy out), and that graph as the live
engine runs it, each next block's controls written while the GPU works (``ahead``). Subjects: every bundled
preset on 2 channels (``guitar_lead`` is the issue's guitar rack: gate, compressor, 8x
oversampled distortion, EQ, cabinet, delay, 2.5 s hall), a lone gain (the floor: copy, one
tiny kernel, copy) and a 10 s convolution on 64 channels. Writes ``gpu_live.json`` and
``gpu_live.md``: median, p99 and max per block in microseconds, ratios against the CPU and
against eager CUDA.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .machine import machine_details, write_results
from .rack import PRESET_DIR, RATE, signal
from .timing import time_steps

#: ``(name, device, graph, ahead)`` of every path timed.
PATHS = (("cpu", "cpu", False, False), ("cuda eager", "cuda", False, False), ("cuda graph", "cuda", True, False),
         ("graph ahead (live)", "cuda", True, True))
#: Seconds each GPU cell runs untimed first (the GPU's clocks rise; a block count was too short).
WARM_UP_SECONDS = 0.5
#: Seconds of the long convolution's impulse response, its channels and block.
LONG_IR_SECONDS, LONG_IR_CHANNELS, LONG_IR_BLOCK = 10.0, 64, 128


def long_ir() -> np.ndarray:
    """A decaying-noise reverb IR of ``LONG_IR_SECONDS`` (mono, float32, RT60 about 3 s)."""
    n = int(LONG_IR_SECONDS * RATE)
    rng = np.random.default_rng(1)
    return (rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / (3.0 * RATE)) * 0.05).astype(np.float32)


def subjects() -> list[tuple[str, object, int, int]]:
    """``(label, make, channels, blocksize)`` for every subject."""
    from rtfx import EFFECTS, load_preset

    found = [("gain (floor)", lambda: EFFECTS["gain"](gain_db=-3.0), 2, 64)]
    for preset in sorted(PRESET_DIR.glob("*.json")):
        for frames in (64, 128):
            found.append((f"preset {preset.stem}", lambda p=preset: load_preset(p), 2, frames))
    taps = long_ir()
    found.append((f"convolution {LONG_IR_SECONDS:g} s IR", lambda: EFFECTS["convolution"](taps=taps),
                  LONG_IR_CHANNELS, LONG_IR_BLOCK))
    return found


def time_path(make, channels: int, frames: int, device: str, graph: bool, ahead: bool, blocks: int,
              warmup: int) -> dict:
    """Per-block wall time of ``BlockProcessor.process`` in microseconds."""
    from rtfx import ProcessSpec
    from rtfx.stream import BlockProcessor

    processor = BlockProcessor(make(), ProcessSpec(RATE, frames, channels, device), graph=graph, ahead=ahead)
    x = np.ascontiguousarray(signal(frames * 64, channels).T * 0.2)  # (frames, channels)
    out = np.zeros((frames, channels), dtype=np.float32)
    step = lambda i: processor.process(x[(i % 64) * frames : (i % 64 + 1) * frames], out)  # noqa: E731
    if device != "cpu":
        warm = time.perf_counter() + WARM_UP_SECONDS
        while time.perf_counter() < warm:
            step(0)
    stats = time_steps(step, blocks, warmup)
    stats["deadline_us"] = frames / RATE * 1e6
    stats["path"] = processor.path
    return stats


def run(blocks: int, warmup: int, cpu_blocks: int) -> dict:
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    rows = []
    for label, make, channels, frames in subjects():
        row = {"name": label, "channels": channels, "frames": frames}
        for name, device, graph, ahead in PATHS:
            count = cpu_blocks if device == "cpu" else blocks
            try:
                row[name] = time_path(make, channels, frames, device, graph, ahead, count, warmup)
            except Exception as error:  # reported, never dropped
                row[name] = {"error": f"{type(error).__name__}: {error}"}
        rows.append(row)
        print(label, frames, " ".join(f"{n}:{row[n].get('p50_us', float('nan')):.0f}us" for n, *_ in PATHS),
              file=sys.stderr)
    return {"machine": machine_details(), "samplerate": RATE, "blocks": blocks, "rows": rows}


def _cell(stats: dict) -> str:
    if "error" in stats:
        return stats["error"][:160]
    return f"{stats['p50_us']:.0f} / {stats['p99_us']:.0f} / {stats['max_us']:.0f}"


def _ratio(row: dict, a: str, b: str) -> str:
    if "p50_us" not in row[a] or "p50_us" not in row[b]:
        return "-"
    return f"{row[a]['p50_us'] / row[b]['p50_us']:.1f}x"


def markdown(doc: dict) -> str:
    m = doc["machine"]
    gpu = m["gpu"].get("name") if isinstance(m.get("gpu"), dict) else "no GPU"
    lines = [
        "# GPU live path: eager against one CUDA graph per block",
        "",
        f"{gpu}; {m['cpu']} ({m['cores']} cores); torch {m['torch']}; {m['date']}.",
        f"BlockProcessor.process per block at {doc['samplerate']} Hz, {doc['blocks']} timed GPU blocks per cell, "
        "one thread. Cells: median / p99 / max in microseconds, copies included. "
        "Ratios: median of the CPU and of eager CUDA over the graph's; of the graph over the graph ahead.",
        "",
        "| subject | ch | frames | deadline | " + " | ".join(n for n, *_ in PATHS) + " | cpu/graph | eager/graph | graph/ahead |",
        "|---|---|---|---|" + "---|" * (len(PATHS) + 3),
    ]
    for row in doc["rows"]:
        deadline = next((row[n]["deadline_us"] for n, *_ in PATHS if "deadline_us" in row[n]), float("nan"))
        cells = [_cell(row[n]) for n, *_ in PATHS]
        lines.append(f"| {row['name']} | {row['channels']} | {row['frames']} | {deadline:.0f} | " + " | ".join(cells)
                     + f" | {_ratio(row, 'cpu', 'cuda graph')} | {_ratio(row, 'cuda eager', 'cuda graph')}"
                     + f" | {_ratio(row, 'cuda graph', 'graph ahead (live)')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m latency_bench.gpu_live", description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2000, help="timed blocks per GPU cell")
    ap.add_argument("--cpu-blocks", type=int, default=300, help="timed blocks per CPU cell")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--out", default=None, help="folder (default latency_bench/results/<machine>/)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        ap.error("no CUDA device is available: the GPU live path needs one")
    doc = run(args.blocks, args.warmup, args.cpu_blocks)
    write_results(args.out, ["cuda"], "gpu_live", doc, markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
