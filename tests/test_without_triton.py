"""Triton is optional (torch's CPU wheels, CI): without it every module imports, the fused
paths are off and a full preset runs, on the torch kernels. Checked in a fresh interpreter
in which importing Triton fails, so it holds where Triton happens to be installed too."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil, sys

class NoTriton:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "triton":
            raise ImportError("Triton hidden by the test")

sys.meta_path.insert(0, NoTriton())
import numpy as np
import rtfx, rtfx.kernels
from rtfx.kernels import fused
for module in pkgutil.iter_modules(rtfx.kernels.__path__):
    importlib.import_module(f"rtfx.kernels.{module.name}")
assert fused.triton is None and not fused.available("cuda")
from rtfx import ProcessSpec, load_preset
from rtfx.stream import BlockProcessor
processor = BlockProcessor(load_preset("assets/presets/guitar_lead.json"), ProcessSpec(48000, 64, 2, "cpu"))
block = np.full((64, 2), 0.1, np.float32)
out = np.empty_like(block)
processor.process(block, out)
assert np.isfinite(out).all()
print("ok")
"""


def test_every_module_imports_and_a_preset_runs_without_triton():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
