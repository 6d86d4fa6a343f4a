"""Per-block latency of rtfx against SciPy and the other Python audio libraries, side by side:
``python -m latency_bench``.

Modules: ``timing`` (the interleaved per-block timer), ``cells`` (grid, signals, filters, the
SciPy oracle), ``peers`` (every implementation of a filter cell: rtfx, SciPy, TorchFX,
torchaudio, pedalboard), ``presets`` (preset chains through the live path), ``runner``
(trial + accuracy + timing + ratios per cell), ``offline`` (TorchFX's paper throughput setup),
``machine`` (what it ran on), ``report`` (``core.json`` and ``core.md``), ``plots`` (PNGs).
"""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run(cells, devices, blocks: int = 1000, warmup: int = 50, out_dir=None,
        signal_seconds: float | None = None, command: str = "python -m latency_bench", log=None,
        subdir: str = "", budget_s: float | None = None, offline_grid: str | None = None,
        offline_reps: int | None = None, offline_budget_s: float | None = None,
        keep_other_part: bool = False, offline_chains: list[str] | None = None):
    """Measure ``cells`` on rtfx ``devices`` (and, unless ``offline_grid`` is None, the offline
    ``"quick"`` or ``"full"`` throughput grid); write ``core.json`` / ``core.md`` to ``out_dir``
    (default ``results/<machine>/<subdir>``). ``budget_s``: seconds of timed blocks one
    implementation may spend in one cell (slow peers get fewer blocks, said in the output).
    ``keep_other_part``: where ``cells`` or ``offline_grid`` is empty, keep that part of an
    existing ``core.json`` in ``out_dir`` (the two parts can be run as separate commands), and
    with ``offline_chains`` (run only those chains' offline cells) its other offline rows.

    Returns ``(doc, json_path, md_path)``.
    """
    from . import machine, offline, report, runner

    name = machine.machine_name(devices)
    out_dir = Path(out_dir) if out_dir is not None else RESULTS / name / subdir
    results = runner.run_cells(cells, devices, blocks, warmup, signal_seconds, log=log, budget_s=budget_s)
    throughput = []
    if offline_grid is not None:
        throughput = offline.run(devices, offline_grid == "quick", offline_reps, offline_budget_s, log=log,
                                 chains=offline_chains)
    settings = {"machine_name": name, "command": command, "devices": devices, "blocks": blocks,
                "warmup": warmup, "budget_s": budget_s, "torch_threads": 1, "flush_denormal": True,
                "samplerate": 48000, "offline_grid": offline_grid, "offline_budget_s": offline_budget_s,
                "offline_chains": offline_chains}
    old = out_dir / "core.json"
    if (keep_other_part or offline_chains) and old.is_file():
        import json
        prev = json.loads(old.read_text())
        if prev.get("settings", {}).get("machine_name") == name:
            kept_from = {part: prev["settings"].get(f"{part}_from") or prev["settings"].get("command")
                         for part in ("latency", "offline")}  # where the kept rows were made
            if keep_other_part and not cells:
                results = prev.get("cells", [])
                settings["latency_from"] = kept_from["latency"]
            if keep_other_part and offline_grid is None:
                throughput = prev.get("offline", [])
                settings["offline_from"] = kept_from["offline"]
            elif offline_chains and offline_grid is not None:
                throughput = _merge_rows(prev.get("offline", []), throughput)
                settings["offline_from"] = f"{', '.join(offline_chains)} rows: this run; the others: {kept_from['offline']}"
    doc = report.build(machine.machine_details(), settings, results, throughput)
    jpath, mpath = report.write(doc, out_dir)
    return doc, jpath, mpath


def _merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` offline rows with those of the same (chain, channels, seconds) replaced by
    ``new`` ones, and new cells appended."""
    fresh = {_row_key(row): row for row in new}
    merged = [fresh.pop(_row_key(row), row) for row in old]
    return merged + list(fresh.values())


def _row_key(row: dict) -> tuple:
    return row["chain"], row["channels"], row["seconds"]
