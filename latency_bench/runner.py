"""Run cells: first-block trial, accuracy pass, interleaved timing, statistics, ratios."""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

from . import cells as C
from .timing import Impl, Unavailable, measure, stats_us

MIN_BLOCKS = 10   # a time budget never cuts an implementation below this many timed blocks
CAPPED_WARMUP = 3  # warm-up rounds of an implementation the budget capped


def setup_thread() -> None:
    """The audio thread's hygiene (DESIGN.md): one torch thread, denormals flushed."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def _sync(impl) -> None:
    if impl.device == "cuda":
        torch.cuda.synchronize()


def _stream_all(impl, signal_blocks: int) -> np.ndarray:
    """Reset ``impl`` and feed it the whole signal, untimed; float64 ``(channels, n)``."""
    impl.reset()
    out = []
    for i in range(signal_blocks):
        y = impl.step(i)
        _sync(impl)
        out.append(impl.to_numpy(y))
    return np.concatenate(out, axis=-1)


def trial(impl: Impl, blocks: int, budget_s: float | None, steps: int = 3):
    """Run ``impl`` on its first blocks (untimed by ``measure``). Returns the impl, a peer's
    timed blocks capped so that it costs at most ``budget_s`` (never below ``MIN_BLOCKS``; rtfx
    always gets every block), or an ``Unavailable("failed")`` if it raised."""
    try:
        impl.reset()
        t0 = time.perf_counter()
        for i in range(steps):
            impl.to_numpy(impl.step(0))
            _sync(impl)
        per_block = (time.perf_counter() - t0) / steps
        impl.reset()
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return Unavailable(impl.name, "failed", f"raised on its first block: {type(exc).__name__}: {first}",
                           role=impl.role, device=impl.device)
    if budget_s is not None and impl.role != "rtfx" and per_block * blocks > budget_s:
        cap = max(MIN_BLOCKS, int(budget_s / per_block))
        if impl.blocks is None or cap < impl.blocks:
            impl.blocks = cap
            impl.warmup = CAPPED_WARMUP
            impl.note = (impl.note + "; " if impl.note else "") + \
                f"timed over at most {cap} blocks to stay within {budget_s:g} s"
    return impl


def _signal_and_impls(cell: C.Cell, devices: list[str], signal_seconds):
    n = C.signal_frames(cell, signal_seconds)
    x = C.make_signal(cell, n)
    xb = C.to_blocks(x, cell.frames)
    if cell.kind == "preset":
        from .presets import implementations
    else:
        from .peers import implementations
    return n, x, xb, implementations(cell, xb, devices)


def run_cell(cell: C.Cell, devices: list[str], blocks: int, warmup: int,
             signal_seconds: float | None = None, budget_s: float | None = None) -> dict:
    """Measure one cell; returns its JSON-ready record."""
    t_start = time.perf_counter()
    n, x, xb, impls = _signal_and_impls(cell, devices, signal_seconds)
    ref = C.reference(cell, x)
    impls = [trial(i, blocks, budget_s) if isinstance(i, Impl) else i for i in impls]
    running = [i for i in impls if isinstance(i, Impl)]

    # Accuracy of rtfx over the whole signal (this also warms it up).
    errors = {}
    for impl in running:
        if impl.role == "rtfx" and ref is not None:
            errors[impl.name] = (C.rel_err(_stream_all(impl, len(xb)), ref), n)

    timings = measure(running, blocks, warmup, len(xb))

    record = {
        "id": cell.id, "kind": cell.kind, "sweep": cell.sweep, "label": cell.label,
        "filter": cell.description, "filter_id": cell.filter_id,
        "frames": cell.frames, "channels": cell.channels, "taps": cell.taps or None,
        "design": cell.design if cell.kind == "iir" else None,
        "order": cell.order if cell.kind == "iir" else None,
        "sections": cell.sections or None, "preset": cell.preset or None,
        "samplerate": C.SAMPLERATE, "deadline_us": cell.deadline_us,
        "signal_frames": n, "blocks": blocks, "warmup": warmup,
        "reference": "float64 SciPy" if ref is not None else "none: no SciPy model of this chain",
        "impls": {}, "speedup": {},
    }
    for impl in impls:
        if isinstance(impl, Unavailable):
            record["impls"][impl.name] = {"role": impl.role, "device": impl.device,
                                          "status": impl.status, "reason": impl.reason}
            continue
        t = timings[impl.name]
        entry = {"role": impl.role, "device": impl.device, "status": "ok", "desc": impl.desc}
        if impl.kernel:
            entry["kernel"] = impl.kernel
        entry.update(stats_us(t.wall_ns))
        if t.gpu_ms is not None:
            gpu = stats_us(t.gpu_ms * 1e6)
            entry.update({f"gpu_{k}": v for k, v in gpu.items() if k != "n"})
        entry["meets_deadline_p99"] = bool(entry["p99_us"] is not None and entry["p99_us"] <= cell.deadline_us)
        entry["max_rel_err"], entry["err_frames"] = None, 0
        if impl.name in errors:
            entry["max_rel_err"], entry["err_frames"] = errors[impl.name]
        elif t.outputs and ref is not None:
            y = np.concatenate(t.outputs, axis=-1)
            entry["max_rel_err"] = C.rel_err(y, ref[:, : y.shape[-1]])
            entry["err_frames"] = int(y.shape[-1])
        if impl.note:
            entry["note"] = impl.note
        record["impls"][impl.name] = entry
    for rname, r in record["impls"].items():
        if r["role"] != "rtfx" or r["status"] != "ok":
            continue
        record["speedup"][rname] = {
            pname: {"p50": p["p50_us"] / r["p50_us"], "p99": p["p99_us"] / r["p99_us"]}
            for pname, p in record["impls"].items() if p["role"] == "peer" and p["status"] == "ok"
        }
    record["meets_deadline"] = sorted(k for k, e in record["impls"].items() if e.get("meets_deadline_p99"))
    record["seconds"] = time.perf_counter() - t_start
    return record


def run_cells(cells: list[C.Cell], devices: list[str], blocks: int, warmup: int,
              signal_seconds: float | None = None, log=sys.stderr, budget_s: float | None = None) -> list[dict]:
    """Measure every cell in order, printing one progress line per cell to ``log``."""
    setup_thread()
    results = []
    with torch.inference_mode():
        for k, cell in enumerate(cells, 1):
            rec = run_cell(cell, devices, blocks, warmup, signal_seconds, budget_s)
            results.append(rec)
            if log is not None:
                parts = [f"{name} p50 {e['p50_us']:.1f} µs" if e["status"] == "ok" else f"{name} {e['status']}"
                         for name, e in rec["impls"].items()]
                print(f"[{k}/{len(cells)}] {cell.id}: " + ", ".join(parts) +
                      f" ({rec['seconds']:.1f} s)", file=log, flush=True)
    return results
