"""Shared helpers: block partitions, streaming, relative error, the CUDA marker, a ring segment set as on a GPU."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from rtfx.kernels.fused_spectra import DIRECT_MAX, turns

torch.set_num_threads(1)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the GPU machine)")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, CUDA])]
#: Where the fused (Triton) kernels can be tested: a GPU, or the CPU under Triton's interpreter.
TRITON_DEVICES = [pytest.param("cuda", marks=[pytest.mark.cuda, CUDA]),
                  pytest.param("cpu", marks=pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                                               reason="the CPU runs Triton only under TRITON_INTERPRET=1"))]


def partition(total: int, sizes, seed: int = 0) -> list[int]:
    """Block lengths covering ``total`` frames: a fixed size, a cycle of sizes, or "random"."""
    rng = np.random.default_rng(seed)
    if sizes == "random":
        cuts = []
        while sum(cuts) < total:
            cuts.append(int(rng.choice([1, 2, 3, 7, 31, 64, 100, 257, 513, 1024])))
    else:
        sizes = [sizes] if isinstance(sizes, int) else list(sizes)
        cuts, i = [], 0
        while sum(cuts) < total:
            cuts.append(sizes[i % len(sizes)])
            i += 1
    cuts[-1] -= sum(cuts) - total
    return [c for c in cuts if c > 0]


def stream(process, x: np.ndarray, sizes, device="cpu", seed: int = 0) -> np.ndarray:
    """Feed ``x`` ``(channels, frames)`` to ``process`` block by block; float64 result."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    out, start = [], 0
    for n in partition(x.shape[-1], sizes, seed):
        out.append(process(xt[:, start : start + n]).detach().cpu().double().clone())
        start += n
    return torch.cat(out, dim=-1).numpy()


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    """max |y - ref| / max |ref|."""
    return float(np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), 1e-30))


def allocations(effect, blocks) -> list[tuple[str, int]]:
    """Tensor allocations (name, bytes) made by ``effect.process`` over ``blocks``, beyond the
    0-dim tensors torch wraps Python scalars in (4-8 bytes each)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for x in blocks:
            effect.process(x)
    return [(e.name, e.cpu_memory_usage) for e in prof.events() if e.cpu_memory_usage > 8 and e.name != "aten::to"]


def as_on_a_gpu(segment):
    """A ``RingSegment`` with its fused path set as a GPU sets it (the interpreter runs it on the CPU)."""
    segment.fused = True
    segment.turns = turns(2 * segment.Q, segment.X.device) if 2 * segment.Q <= DIRECT_MAX else None
    return segment
