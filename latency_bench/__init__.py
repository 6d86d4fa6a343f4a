"""Per-block latency of rtfx kernels against SciPy, side by side: ``python -m latency_bench``.

Modules: ``timing`` (the interleaved per-block timer), ``cells`` (grid, signals, filters and
every implementation), ``runner`` (accuracy pass + timing + ratios per cell), ``machine`` (what
it ran on), ``report`` (``core.json`` and ``core.md``).
"""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run(cells, devices, blocks: int = 1000, warmup: int = 50, out_dir=None,
        signal_seconds: float | None = None, command: str = "python -m latency_bench", log=None,
        subdir: str = ""):
    """Measure ``cells`` on rtfx ``devices`` and write ``core.json`` / ``core.md`` to ``out_dir``
    (default ``results/<machine>/<subdir>``).

    Returns ``(doc, json_path, md_path)``.
    """
    from . import machine, report, runner

    name = machine.machine_name(devices)
    out_dir = Path(out_dir) if out_dir is not None else RESULTS / name / subdir
    results = runner.run_cells(cells, devices, blocks, warmup, signal_seconds, log=log)
    settings = {"machine_name": name, "command": command, "devices": devices, "blocks": blocks,
                "warmup": warmup, "torch_threads": 1, "flush_denormal": True, "samplerate": 48000}
    doc = report.build(machine.machine_details(), settings, results)
    jpath, mpath = report.write(doc, out_dir)
    return doc, jpath, mpath
