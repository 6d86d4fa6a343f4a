"""What the numbers were measured on: CPU, cores, GPU, driver, library versions, date, commit."""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy
import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def slug(text: str) -> str:
    """'Intel(R) Xeon(R) Processor @ 2.6GHz' -> 'intel-xeon'."""
    text = re.sub(r"\((R|TM|tm|r)\)", "", text)
    text = re.sub(r"@.*$", "", text)
    text = re.sub(r"\b(CPU|Processor|with Radeon Graphics)\b", "", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def gpu_info() -> dict | None:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "cuda_runtime": torch.version.cuda,
            "driver": None}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return info


def machine_name(dsp_devices: list[str]) -> str:
    """``cuda-<gpu>`` when the GPU is measured, else ``cpu-<model>-<n>cores``."""
    if "cuda" in dsp_devices and torch.cuda.is_available():
        return "cuda-" + slug(torch.cuda.get_device_name(0))
    return f"cpu-{slug(cpu_model())}-{cores()}cores"


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit() -> str | None:
    """HEAD, or ``$LATENCY_BENCH_COMMIT`` where the tree was copied without its history."""
    head = (_git("rev-parse", "HEAD") or "").strip()
    if not re.fullmatch(r"[0-9a-f]{40}", head):
        head = os.environ.get("LATENCY_BENCH_COMMIT", "").strip()
    return head if re.fullmatch(r"[0-9a-f]{40}", head) else None


def git_dirty() -> bool | None:
    """Whether rtfx/ or latency_bench/ differ from the commit (the numbers may not match it).

    ``None`` where git cannot tell (no history here: the commit came from the environment).
    """
    if not re.fullmatch(r"[0-9a-f]{40}", (_git("rev-parse", "HEAD") or "").strip()):
        return None
    status = _git("status", "--porcelain", "--", "rtfx", "latency_bench", ":!latency_bench/results")
    return None if status is None else bool(status.strip())


def peer_versions() -> dict:
    """Versions of the optional peers, or why they are not usable here."""
    from .peers import optional_module
    out = {}
    for name in ("torchfx", "torchaudio", "pedalboard"):
        mod, why = optional_module(name)
        if mod is None:
            out[name] = why
            continue
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = getattr(mod, "__version__", "installed")
    return out


def machine_details() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "gpu": gpu_info(),
        "peers": peer_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }


def write_results(out: str | None, dsp_devices: list[str], stem: str, doc: dict, markdown: str) -> None:
    """``<stem>.json`` and ``<stem>.md`` into ``out`` (default ``results/<machine>/``)."""
    folder = Path(out) if out else Path(__file__).resolve().parent / "results" / machine_name(dsp_devices)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (folder / f"{stem}.md").write_text(markdown)
    print(f"wrote {folder / (stem + '.md')}", file=sys.stderr)
