"""CPU vs GPU on request: time the current chain block by block on each device, in a process
of its own (niced), so the window and the engine's audio thread are not slowed by it.

On CPU the cost is the thread's CPU time per block (what the chain costs, not counting the
moments the OS gave the core to another process: the live engine runs meanwhile); on CUDA it
is wall time, since the host waits for the GPU's result.
"""
from __future__ import annotations

import os
import time

import numpy as np


def measure_chain(preset: dict, samplerate: int, blocksize: int, channels: int, device: str,
                  seconds: float = 1.0) -> dict:
    """Per-block time (us) of ``preset`` on ``device``, back to back on noise: p50/p99/max,
    the deadline and the load at p99 (CPU: thread CPU time; CUDA: wall time), and how the
    blocks ran (``BlockProcessor.path``: on CUDA one graph per block, or why not). Raises
    ``RuntimeError`` for a device that is missing."""
    import torch

    from rtfx.preset import chain_from_preset
    from rtfx.spec import ProcessSpec
    from rtfx.stream import BlockProcessor

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA GPU on this machine")
    torch.set_num_threads(1)
    processor = BlockProcessor(chain_from_preset(preset), ProcessSpec(samplerate, blocksize, channels, device),
                               ahead=True)  # as the live engine runs it
    block = (0.1 * np.random.default_rng(0).standard_normal((blocksize, channels))).astype(np.float32)
    out = np.zeros_like(block)
    blocks = max(50, int(seconds * samplerate / blocksize))
    times = np.empty(blocks)
    clock = time.thread_time_ns if device == "cpu" else time.perf_counter_ns
    with torch.inference_mode():
        for i in range(blocks):
            started = clock()
            processor.process(block, out)  # copies the result to the host: includes the GPU's time
            times[i] = (clock() - started) / 1e3
    deadline = blocksize / samplerate * 1e6
    p50, p99 = np.percentile(times, [50, 99])
    return {"device": device, "path": processor.path, "p50_us": float(p50), "p99_us": float(p99), "max_us": float(times.max()),
            "deadline_us": deadline, "load_p99": float(p99 / deadline), "blocks": blocks}


def compare_devices(preset: dict, samplerate: int, blocksize: int, channels: int) -> dict:
    """``{"cpu": result or error text, "cuda": result or error text}`` (run in a worker)."""
    try:
        os.nice(10)  # below the engine and the window
    except OSError:
        pass
    results: dict = {}
    for device in ("cpu", "cuda"):
        try:
            results[device] = measure_chain(preset, samplerate, blocksize, channels, device)
        except Exception as error:  # noqa: BLE001 - shown in the window, never a crash
            results[device] = str(error)
    return results
