"""Offline rendering: a file streamed through a chain in fixed blocks, as the live engine does."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .effect import Effect
from .spec import ProcessSpec
from .stream import BlockProcessor


def render(
    chain: Effect,
    audio: np.ndarray,
    samplerate: float,
    blocksize: int = 256,
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Stream ``audio`` through ``chain`` block by block; returns the output, same shape.

    Args:
        chain: effect or chain (prepared here for this rate, block size and channel count).
        audio: float32 ``(channels, frames)``.
        samplerate: in Hz.
        blocksize: frames per block (the last block may be shorter).
        device: "cpu" or "cuda".
        progress: called with the number of frames done after each block.
    Returns:
        float32 ``(channels, frames)``.
    """
    channels, frames = audio.shape
    spec = ProcessSpec(samplerate, blocksize, channels, device)
    processor = BlockProcessor(chain, spec)
    interleaved = np.ascontiguousarray(audio.T, dtype=np.float32)
    out = np.zeros_like(interleaved)
    # The live engine's audio-thread settings: one intra-op thread (more gave 55 ms spikes),
    # denormals flushed (decaying tails cost 4x otherwise).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        with torch.inference_mode():
            for start in range(0, frames, blocksize):
                stop = min(start + blocksize, frames)
                processor.process(interleaved[start:stop], out[start:stop])
                if progress is not None:
                    progress(stop - start)
    finally:
        torch.set_num_threads(threads)
    return np.ascontiguousarray(out.T)
