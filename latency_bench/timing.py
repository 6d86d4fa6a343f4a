"""Per-block timing: interleaved rounds, perf_counter_ns, CUDA synchronised per block.

Every implementation of a cell gets the same block in the same round; the order inside a round
rotates, so background noise (another process, a frequency step, a cache flush) lands on all of
them alike. A round runs ``step(i)`` for block ``i``; the clock covers that call and, on CUDA,
the ``torch.cuda.synchronize()`` after it: that is what a live callback waits for.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch


@dataclass
class Impl:
    """One implementation of a cell.

    Args:
        name: stable key, e.g. ``"rtfx-cpu"``, ``"sosfilt"``.
        role: ``"rtfx"`` or ``"peer"``.
        device: ``"cpu"`` or ``"cuda"``; on ``"cuda"`` every block is synchronised.
        step: processes block ``i`` of the cell's signal, returns the block's output.
        reset: zeroes the implementation's state.
        to_numpy: turns a ``step`` output into a float64 ``(channels, frames)`` array (a copy).
        blocks: timed blocks for this implementation (``None``: the cell's number).
        desc: what exactly is timed, in words.
        note: why ``blocks`` is capped, when it is.
        kernel: which kernel object runs (rtfx: class and its main settings).
    """

    name: str
    role: str
    device: str
    step: Callable[[int], Any]
    reset: Callable[[], None]
    to_numpy: Callable[[Any], np.ndarray]
    blocks: int | None = None
    desc: str = ""
    note: str = ""
    kernel: str = ""
    warmup: int | None = None   # own warm-up rounds (None: the cell's); slow peers get fewer


@dataclass
class Unavailable:
    """An implementation that did not run in a cell, and why (reported, never dropped).

    ``status``: ``"missing"`` (not installed / import failed), ``"failed"`` (raised on its first
    block), ``"n/a"`` (no equivalent for this kind of cell) or ``"not yet"`` (a hook).
    """

    name: str
    status: str
    reason: str
    role: str = "peer"
    device: str = "cpu"


@dataclass
class Timing:
    """Raw result of :func:`measure` for one implementation."""

    wall_ns: np.ndarray
    gpu_ms: np.ndarray | None = None
    outputs: list = field(default_factory=list)  # first pass over the signal, float64


def time_steps(step: Callable[[int], Any], blocks: int, warmup: int) -> dict:
    """``stats_us`` of the wall time of ``step(i)`` for ``blocks`` timed calls after ``warmup``
    untimed ones (inference mode, the garbage collector off meanwhile)."""
    times = np.zeros(blocks, dtype=np.int64)
    gc.collect()
    gc.disable()
    try:
        with torch.inference_mode():
            for i in range(warmup + blocks):
                t0 = time.perf_counter_ns()
                step(i)
                if i >= warmup:
                    times[i - warmup] = time.perf_counter_ns() - t0
    finally:
        gc.enable()
    return stats_us(times)


def stats_us(ns: np.ndarray) -> dict:
    """p50 / p99 / max / mean of a timing array, in microseconds."""
    us = np.asarray(ns, dtype=np.float64) / 1e3
    if us.size == 0:
        return {"n": 0, "p50_us": None, "p99_us": None, "max_us": None, "mean_us": None}
    return {
        "n": int(us.size),
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
        "mean_us": float(us.mean()),
    }


def measure(impls: list[Impl], blocks: int, warmup: int, signal_blocks: int,
            record: bool = True) -> dict[str, Timing]:
    """Time ``impls`` side by side over ``warmup + blocks`` rounds.

    Round ``r`` feeds block ``r % signal_blocks`` to every implementation that still has rounds
    left (``warmup + impl.blocks``), in an order rotated by one each round. States are reset
    first, so the outputs of the first pass over the signal (recorded outside the clock when
    ``record``) continue one stream from zero state and can be checked against a reference.
    """
    for impl in impls:
        impl.reset()
    warm = {impl.name: warmup if impl.warmup is None else min(impl.warmup, warmup) for impl in impls}
    rounds = {impl.name: warm[impl.name] + (blocks if impl.blocks is None else min(impl.blocks, blocks))
              for impl in impls}
    wall = {impl.name: np.zeros(rounds[impl.name] - warm[impl.name], dtype=np.int64) for impl in impls}
    cuda = any(impl.device == "cuda" for impl in impls)
    gpu = {impl.name: np.zeros(rounds[impl.name] - warm[impl.name]) for impl in impls if impl.device == "cuda"}
    events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if cuda else None
    outputs: dict[str, list] = {impl.name: [] for impl in impls}
    clock = time.perf_counter_ns
    sync = torch.cuda.synchronize if cuda else None

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(rounds.values(), default=0)):
            i = r % signal_blocks
            shift = r % len(impls)
            for impl in impls[shift:] + impls[:shift]:
                if r >= rounds[impl.name]:
                    continue
                w = warm[impl.name]
                if impl.device == "cuda":
                    t0 = clock()
                    events[0].record()
                    out = impl.step(i)
                    events[1].record()
                    sync()
                    t1 = clock()
                    if r >= w:
                        gpu[impl.name][r - w] = events[0].elapsed_time(events[1])
                else:
                    t0 = clock()
                    out = impl.step(i)
                    t1 = clock()
                if r >= w:
                    wall[impl.name][r - w] = t1 - t0
                if record and r < signal_blocks:
                    outputs[impl.name].append(impl.to_numpy(out))
    finally:
        if gc_was_enabled:
            gc.enable()
    return {impl.name: Timing(wall[impl.name], gpu.get(impl.name), outputs[impl.name]) for impl in impls}
