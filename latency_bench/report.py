"""Write ``core.json`` (machine + every cell) and ``core.md`` (tables a human reads)."""
from __future__ import annotations

import json
from pathlib import Path

SCHEMA = "rtfx-latency-bench/2"
KIND_TITLES = {"iir": "IIR cascades (Butterworth and elliptic lowpass, 1 kHz)",
               "fir": "Short FIR (windowed-sinc lowpass)",
               "ir": "Long convolution (synthetic reverb IRs)",
               "preset": "Bundled presets through the live path (BlockProcessor)"}
SWEEP_TITLES = {"default": "default cell", "frames": "block size", "channels": "channels",
                "order": "order / family", "taps": "length", "preset": "preset"}
BASE = "rtfx-cpu"   # ratios in the tables are against rtfx on CPU (the live default)
WRONG = 1e-3        # a relative error above this: the output is not the filter's


def build(machine: dict, settings: dict, cells: list[dict], offline: list[dict] | None = None) -> dict:
    return {"schema": SCHEMA, "machine": machine, "settings": settings, "cells": cells,
            "offline": offline or []}


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def _names(cells: list[dict]) -> list[str]:
    """Implementations in first-seen order, rtfx first."""
    names: list[str] = []
    for cell in cells:
        for name in cell["impls"]:
            if name not in names:
                names.append(name)
    return sorted(names, key=lambda n: (not n.startswith("rtfx"), names.index(n)))


def _entry(cell: dict, name: str) -> str:
    e = cell["impls"].get(name)
    if e is None:
        return "—"
    if e["status"] != "ok":
        return e["status"]
    ok = "✓" if e["meets_deadline_p99"] else "✗"
    err = f"{e['max_rel_err']:.0e}" if e.get("max_rel_err") is not None else "no ref"
    text = f"{e['p50_us']:.0f} / {e['p99_us']:.0f} {ok} · {err}"
    base = cell["impls"].get(BASE)
    if name != BASE and base and base.get("status") == "ok":
        text += f" · {e['p50_us'] / base['p50_us']:.2g}×"
    if e.get("gpu_p50_us") is not None:
        text += f" · GPU span {e['gpu_p50_us']:.0f} / {e['gpu_p99_us']:.0f}"
    if e["n"] < cell["blocks"]:
        text += f" (n={e['n']})"
    return text


def table(cells: list[dict]) -> list[str]:
    """One row per cell; one column per implementation: ``p50 / p99 µs ✓ · err · × vs rtfx-cpu``."""
    names = _names(cells)
    head = ["cell", "sweep", "frames", "ch", "deadline µs"] + names
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for c in cells:
        row = [c["label"], SWEEP_TITLES.get(c.get("sweep"), c.get("sweep", "")), str(c["frames"]),
               str(c["channels"]), f"{c['deadline_us']:.0f}"] + [_entry(c, n) for n in names]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def deadline_table(cells: list[dict]) -> list[str]:
    """Per block size: the deadline and, per implementation, in how many cells p99 met it."""
    names = _names(cells)
    lines = ["| frames | deadline µs | cells | " + " | ".join(names) + " |",
             "|" + "|".join(["---"] * (3 + len(names))) + "|"]
    for frames in sorted({c["frames"] for c in cells}):
        cs = [c for c in cells if c["frames"] == frames]
        row = [str(frames), f"{cs[0]['deadline_us']:.0f}", str(len(cs))]
        for n in names:
            ran = [c["impls"][n] for c in cs if c["impls"].get(n, {}).get("status") == "ok"]
            met = sum(e["meets_deadline_p99"] for e in ran)
            wrong = sum((e.get("max_rel_err") or 0) > WRONG for e in ran)
            text = f"{met}/{len(ran)}" + (" ✓" if ran and met == len(ran) and not wrong else "")
            row.append((text + (f" ({wrong} wrong output)" if wrong else "")) if ran else "—")
        lines.append("| " + " | ".join(row) + " |")
    return lines


OFFLINE_TITLES = {"iir": "IIR chain (4 biquads)", "fir": "FIR chain (5 × 101–105 taps)",
                  "butter8": "8th-order Butterworth lowpass, 1 kHz at 48 kHz (GPU target: ≤ 1 ms at 8 ch, ≤ 3 ms at 64 ch)"}


def offline_table(records: list[dict], chain: str) -> list[str]:
    recs = [r for r in records if r["chain"] == chain]
    if not recs:
        return []
    names = _names(recs)
    lines = ["| channels | seconds | " + " | ".join(names) + " |", "|" + "|".join(["---"] * (2 + len(names))) + "|"]
    for r in recs:
        row = [str(r["channels"]), f"{r['seconds']:g}"]
        for n in names:
            e = r["impls"].get(n, {"status": "—"})
            if e["status"] == "ok":
                base = r["impls"].get(BASE, {})
                ratio = (f" · {e['median_s'] / base['median_s']:.2g}×"
                         if n != BASE and base.get("status") == "ok" else "")
                row.append(f"{e['median_s']:.3g} s · {e['max_rel_err']:.0e}{ratio}")
            elif e["status"] == "skipped":
                row.append(f"skipped (≈{e['predicted_s']:.0f} s)")
            else:
                row.append(e["status"])
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _reasons(cells: list[dict]) -> list[str]:
    """One line per (implementation, reason) that did not run, with how many cells."""
    seen: dict[tuple, list[str]] = {}
    for c in cells:
        for n, e in c["impls"].items():
            if e["status"] not in ("ok",):
                seen.setdefault((n, e["status"], e["reason"]), []).append(c.get("id") or
                                                                         f"{c['chain']}-{c['channels']}ch-{c['seconds']:g}s")
    return [f"- **{n}** {status} in {len(ids)} cell(s) ({', '.join(ids[:4])}{', …' if len(ids) > 4 else ''}): {reason}"
            for (n, status, reason), ids in seen.items()]


def markdown(doc: dict) -> str:
    m, s = doc["machine"], doc["settings"]
    gpu = m.get("gpu")
    gpu_text = (f"{gpu['name']} ({gpu['memory_gib']} GiB, driver {gpu['driver']}, CUDA {gpu['cuda_runtime']})"
                if gpu else "none used")
    cells = doc["cells"]
    out = [
        f"# rtfx per-block latency: {s['machine_name']}",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; GPU: {gpu_text}",
        f"- torch {m['torch']}, scipy {m['scipy']}, numpy {m['numpy']}, Python {m['python']}; "
        f"{m['date']}; commit {(m.get('git_commit') or '?')[:10]}"
        f"{' + uncommitted changes' if m.get('git_dirty') else ''}",
        f"- peers: " + ", ".join(f"{k} {v}" for k, v in (m.get("peers") or {}).items()),
        f"- `{s['command']}`: {s['blocks']} timed blocks per cell after {s['warmup']} warm-up blocks; "
        f"an implementation slower than {s.get('budget_s')} s per cell gets fewer (n= in its column); "
        "48 kHz; torch 1 thread, denormals flushed, inference_mode, gc off while timing; "
        "implementations interleaved block by block in rotating order.",
        "",
        "Each implementation column reads `p50 / p99 µs ✓|✗ · error · ×`: wall-clock time per block "
        "(`perf_counter_ns`; on CUDA pinned H2D + eager launches + D2H + `torch.cuda.synchronize()`), "
        "✓ when p99 is within the block's deadline (frames / 48000 s), the maximum relative error "
        "(max |y − ref| / max |ref|) against float64 SciPy on the cell's data (rtfx: the whole "
        "signal, 1 s of noise or the IR + 0.5 s; peers: the blocks they ran), and `×` = its p50 / "
        f"{BASE}'s p50 (above 1×: slower than rtfx on CPU). `missing`, `failed`, `n/a`, `not yet`: "
        "did not run; the reasons are listed under the tables. CUDA columns add `GPU span p50 / p99`: "
        "the CUDA-event time from before H2D to after D2H.",
        "",
        "## Cells run",
        "",
        "One axis at a time around the default cell (256 frames, 2 channels; IIR: 8th-order "
        "Butterworth): " + "; ".join(
            f"{k}: " + ", ".join(sorted({c['filter_id'] for c in cells if c['kind'] == k}, key=_natural))
            + " × frames " + ", ".join(str(f) for f in sorted({c['frames'] for c in cells if c['kind'] == k}))
            + " × channels " + ", ".join(str(f) for f in sorted({c['channels'] for c in cells if c['kind'] == k}))
            for k in KIND_TITLES if any(c["kind"] == k for c in cells))
        + f" ({len(cells)} cells; exact list in the tables).",
        "",
        "## Deadlines: cells whose p99 met the deadline, per block size",
        "",
        "`met/ran`: cells of that block size in which the implementation ran and its p99 stayed "
        f"within the deadline; ✓: all of them, with correct output; `wrong output`: error > {WRONG:g} "
        "(a peer that keeps no state between blocks), fast or not.",
        "",
    ] + deadline_table(cells) + [""]
    for kind, title in KIND_TITLES.items():
        cs = [c for c in cells if c["kind"] == kind]
        if cs:
            out += [f"## {title}", ""] + table(cs) + [""]
    if doc.get("offline"):
        out += ["## Offline throughput (TorchFX's paper setup, 44.1 kHz; the GPU target, 48 kHz)", "",
                "Whole signal on the device before the clock, output left there; median of the runs; "
                "`seconds · error · ×` with × = its time / rtfx-cpu's. rtfx-cpu processes the chain in "
                "4096-frame blocks, rtfx-cuda the whole signal as one block (IIR: the chunked state-space "
                "scan, parallel over time). Skipped: predicted over the time budget.", ""]
        if s.get("offline_from"):
            out += [f"Rows from: {s['offline_from']}.", ""]
        for chain, title in OFFLINE_TITLES.items():
            lines = offline_table(doc["offline"], chain)
            if lines:
                out += [f"### {title}", ""] + lines + [""]
    reasons = _reasons(cells) + _reasons(doc.get("offline", []))
    if reasons:
        out += ["## Not run, and why", ""] + reasons + [""]
    notes = [f"- {c['id']}, {n}: {e['note']}" for c in cells for n, e in c["impls"].items() if e.get("note")]
    if notes:
        out += ["## Notes on implementations", ""] + notes + [""]
    out += ["## Filters", ""]
    seen = set()
    for c in cells:
        if c["label"] not in seen:
            seen.add(c["label"])
            out.append(f"- {c['label']}: {c['filter']}")
    return "\n".join(out) + "\n"


def _natural(text: str):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def write(doc: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out_dir / "core.json", out_dir / "core.md"
    write_json(doc, jpath)
    mpath.write_text(markdown(doc))
    return jpath, mpath
