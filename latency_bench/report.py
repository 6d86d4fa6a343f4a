"""Write ``core.json`` (machine + every cell) and ``core.md`` (tables a human reads)."""
from __future__ import annotations

import json
from pathlib import Path

SCHEMA = "rtfx-latency-bench/1"
KIND_TITLES = {"iir": "IIR: 8th-order Butterworth lowpass (4 second-order sections)",
               "fir": "FIR and long-IR convolution"}
PEER_TITLES = {"sosfilt": "sosfilt", "lfilter-cascade": "lfilter cascade",
               "torch-df2t": "torch DF2T loop", "lfilter": "lfilter"}


def build(machine: dict, settings: dict, cells: list[dict]) -> dict:
    return {"schema": SCHEMA, "machine": machine, "settings": settings, "cells": cells}


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def _t(e: dict) -> str:
    return f"{e['p50_us']:.1f} / {e['p99_us']:.1f} / {e['max_us']:.0f}"


def _ok(e: dict) -> str:
    return "✓" if e["meets_deadline_p99"] else "✗"


def _gpu(e: dict) -> str:
    """The CUDA-event span of a GPU block (H2D to D2H), p50 / p99."""
    if e.get("gpu_p50_us") is None:
        return ""
    return f" (GPU span {e['gpu_p50_us']:.0f} / {e['gpu_p99_us']:.0f})"


def _err(e: dict) -> str:
    return f"{e['max_rel_err']:.1e}" if e.get("max_rel_err") is not None else "—"


def _ratio(r: dict | None) -> str:
    return "—" if r is None else f"{r['p50']:.2f}× ({r['p99']:.2f}×)"


def table(cells: list[dict]) -> list[str]:
    """One row per cell and rtfx device, one column group per peer present."""
    peers: list[str] = []
    for cell in cells:
        for name, e in cell["impls"].items():
            if e["role"] == "peer" and name not in peers:
                peers.append(name)
    head = ["cell", "frames", "ch", "deadline µs", "rtfx kernel", "rtfx µs", "rtfx err"]
    for p in peers:
        title = PEER_TITLES.get(p, p)
        head += [f"{title} µs", f"× vs {title}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for cell in cells:
        for rname, r in cell["impls"].items():
            if r["role"] != "rtfx":
                continue
            row = [cell["label"], str(cell["frames"]), str(cell["channels"]), f"{cell['deadline_us']:.0f}",
                   f"{r['device']}: {r.get('kernel', '?')}", f"{_t(r)} {_ok(r)}{_gpu(r)}", _err(r)]
            for p in peers:
                e = cell["impls"].get(p)
                if e is None:
                    row += ["—", "—"]
                    continue
                capped = f" ({e['n']} blocks)" if e["n"] < cell["blocks"] else ""
                row += [f"{_t(e)} {_ok(e)}{capped}", _ratio(cell["speedup"][rname].get(p))]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(doc: dict) -> str:
    m, s = doc["machine"], doc["settings"]
    gpu = m.get("gpu")
    gpu_text = (f"{gpu['name']} ({gpu['memory_gib']} GiB, driver {gpu['driver']}, CUDA {gpu['cuda_runtime']})"
                if gpu else "none used")
    out = [
        f"# rtfx per-block latency: {s['machine_name']}",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; GPU: {gpu_text}",
        f"- torch {m['torch']}, scipy {m['scipy']}, numpy {m['numpy']}, Python {m['python']}; "
        f"{m['date']}; commit {(m.get('git_commit') or '?')[:10]}"
        f"{' + uncommitted changes' if m.get('git_dirty') else ''}",
        f"- `{s['command']}`: {s['blocks']} timed blocks per cell after {s['warmup']} warm-up blocks "
        f"(fewer where a column says so), 48 kHz; torch 1 thread, denormals flushed, inference_mode, "
        "gc off while timing; implementations interleaved block by block in rotating order.",
        "",
        "Times (µs columns) are per block, `p50 / p99 / max`, wall clock (`perf_counter_ns`); on CUDA each block "
        "includes pinned H2D, the kernel(s) launched eagerly (no CUDA graph), D2H and "
        "`torch.cuda.synchronize()` (the live cost); `GPU span` is the CUDA-event time from before "
        "H2D to after D2H, p50 / p99. "
        "✓/✗: p99 within the deadline (frames / 48000 s). `× vs peer` = peer time / rtfx time at p50 "
        "(at p99 in parentheses): above 1× rtfx is faster. `rtfx err` = max |y − ref| / max |ref| of rtfx's "
        "streamed float32 output against SciPy in float64 on the whole cell signal (1 s of noise; "
        "the IR length + 0.5 s for long IRs). SciPy peers get the same float32 blocks and compute "
        "in float64.",
        "",
    ]
    for kind in ("iir", "fir"):
        cells = [c for c in doc["cells"] if c["kind"] == kind]
        if not cells:
            continue
        out += [f"## {KIND_TITLES[kind]}", ""] + table(cells) + [""]
    notes = []
    for c in doc["cells"]:
        for name, e in c["impls"].items():
            if e.get("note") or e["n"] < c["blocks"]:
                notes.append(f"- {c['id']}, {name}: timed over {e['n']} blocks, not {c['blocks']} "
                             f"(too slow for more); its error is over its first {e.get('err_frames', 0)} frames.")
    if notes:
        out += ["Capped implementations (never skipped):", ""] + notes + [""]
    out += ["Filters:", ""]
    seen = set()
    for c in doc["cells"]:
        if c["label"] not in seen:
            seen.add(c["label"])
            out.append(f"- {c['label']}: {c['filter']}")
    return "\n".join(out) + "\n"


def write(doc: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out_dir / "core.json", out_dir / "core.md"
    write_json(doc, jpath)
    mpath.write_text(markdown(doc))
    return jpath, mpath
