"""Offline rendering: a file streamed through a chain in fixed blocks, as the live engine does."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .effect import Effect
from .spec import ProcessSpec
from .stream import BlockProcessor


#: Default block on the CPU: what the live engine uses.
CPU_BLOCK = 256
#: Default block on a GPU: long blocks keep it busy, and IIR filters then run in parallel over
#: time (the chunked state-space scan in ``kernels/iir.py``); 2^18 frames = 5.5 s at 48 kHz.
CUDA_BLOCK = 1 << 18


def default_blocksize(device: str) -> int:
    """``CUDA_BLOCK`` on a GPU, else ``CPU_BLOCK`` (frames)."""
    return CUDA_BLOCK if torch.device(device).type == "cuda" else CPU_BLOCK


def render(
    chain: Effect,
    audio: np.ndarray,
    samplerate: float,
    blocksize: int | None = None,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Stream ``audio`` through ``chain`` block by block; returns the output, same shape.

    The output is aligned with the input: a chain with latency (look-ahead, oversampling) is
    run ``chain.latency`` frames past the end and its first ``latency`` frames are dropped.

    Args:
        chain: effect or chain (prepared here for this rate, block size and channel count).
        audio: float32 ``(channels, frames)``.
        samplerate: in Hz.
        blocksize: frames per block (the last block may be shorter); default ``CPU_BLOCK``
            or ``CUDA_BLOCK``. Any block size gives the same output.
        device: "cpu" or "cuda".
        progress: called with the number of frames done after each block.
    Returns:
        float32 ``(channels, frames)``.
    """
    channels, frames = audio.shape
    blocksize = blocksize or default_blocksize(device)
    spec = ProcessSpec(samplerate, blocksize, channels, device)
    processor = BlockProcessor(chain, spec)
    latency = chain.latency
    interleaved = np.zeros((frames + latency, channels), dtype=np.float32)
    interleaved[:frames] = audio.T
    out = np.zeros_like(interleaved)
    # The live engine's audio-thread settings: one intra-op thread (more gave 55 ms spikes),
    # denormals flushed (decaying tails cost 4x otherwise).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        with torch.inference_mode():
            for start in range(0, frames + latency, blocksize):
                stop = min(start + blocksize, frames + latency)
                processor.process(interleaved[start:stop], out[start:stop])
                if progress is not None:
                    progress(min(stop, frames) - min(start, frames))
    finally:
        torch.set_num_threads(threads)
    return np.ascontiguousarray(out[latency:].T)
