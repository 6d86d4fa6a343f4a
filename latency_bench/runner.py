"""Run cells: accuracy pass, interleaved timing, statistics, ratios."""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

from . import cells as C
from .timing import measure, stats_us


def setup_thread() -> None:
    """The audio thread's hygiene (DESIGN.md): one torch thread, denormals flushed."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def _stream_all(impl, signal_blocks: int) -> np.ndarray:
    """Reset ``impl`` and feed it the whole signal, untimed; float64 ``(channels, n)``."""
    impl.reset()
    out = []
    for i in range(signal_blocks):
        y = impl.step(i)
        if impl.device == "cuda":
            torch.cuda.synchronize()
        out.append(impl.to_numpy(y))
    return np.concatenate(out, axis=-1)


def run_cell(cell: C.Cell, devices: list[str], blocks: int, warmup: int,
             signal_seconds: float | None = None) -> dict:
    """Measure one cell; returns its JSON-ready record."""
    t_start = time.perf_counter()
    n = C.signal_frames(cell, signal_seconds)
    x = C.make_signal(cell, n)
    xb = C.to_blocks(x, cell.frames)
    ref = C.reference(cell, x)
    impls = C.implementations(cell, xb, devices)

    # Accuracy of rtfx over the whole signal (this also warms it up).
    errors = {}
    for impl in impls:
        if impl.role == "rtfx":
            errors[impl.name] = (C.rel_err(_stream_all(impl, len(xb)), ref), n)

    timings = measure(impls, blocks, warmup, len(xb))

    record = {
        "id": cell.id, "kind": cell.kind, "label": cell.label, "filter": cell.description,
        "frames": cell.frames, "channels": cell.channels, "taps": cell.taps or None,
        "sections": C.IIR_ORDER // 2 if cell.kind == "iir" else None,
        "samplerate": C.SAMPLERATE, "deadline_us": cell.deadline_us,
        "signal_frames": n, "blocks": blocks, "warmup": warmup, "impls": {}, "speedup": {},
    }
    for impl in impls:
        t = timings[impl.name]
        entry = {"role": impl.role, "device": impl.device, "desc": impl.desc}
        if impl.kernel:
            entry["kernel"] = impl.kernel
        entry.update(stats_us(t.wall_ns))
        if t.gpu_ms is not None:
            gpu = stats_us(t.gpu_ms * 1e6)
            entry.update({f"gpu_{k}": v for k, v in gpu.items() if k != "n"})
        entry["meets_deadline_p99"] = bool(entry["p99_us"] is not None and entry["p99_us"] <= cell.deadline_us)
        if impl.name in errors:
            entry["max_rel_err"], entry["err_frames"] = errors[impl.name]
        elif t.outputs:
            y = np.concatenate(t.outputs, axis=-1)
            entry["max_rel_err"] = C.rel_err(y, ref[:, : y.shape[-1]])
            entry["err_frames"] = int(y.shape[-1])
        if impl.note:
            entry["note"] = impl.note
        record["impls"][impl.name] = entry
    for rname, r in record["impls"].items():
        if r["role"] != "rtfx":
            continue
        record["speedup"][rname] = {
            pname: {"p50": p["p50_us"] / r["p50_us"], "p99": p["p99_us"] / r["p99_us"]}
            for pname, p in record["impls"].items() if p["role"] == "peer"
        }
    record["seconds"] = time.perf_counter() - t_start
    return record


def run_cells(cells: list[C.Cell], devices: list[str], blocks: int, warmup: int,
              signal_seconds: float | None = None, log=sys.stderr) -> list[dict]:
    """Measure every cell in order, printing one progress line per cell to ``log``."""
    setup_thread()
    results = []
    with torch.inference_mode():
        for k, cell in enumerate(cells, 1):
            rec = run_cell(cell, devices, blocks, warmup, signal_seconds)
            results.append(rec)
            if log is not None:
                parts = [f"{name} p50 {e['p50_us']:.1f} µs" for name, e in rec["impls"].items()]
                print(f"[{k}/{len(cells)}] {cell.id}: " + ", ".join(parts) +
                      f" ({rec['seconds']:.1f} s)", file=log, flush=True)
    return results
