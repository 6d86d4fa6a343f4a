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
    with torch.inference_mode():
        for start in range(0, frames, blocksize):
            stop = min(start + blocksize, frames)
            processor.process(interleaved[start:stop], out[start:stop])
            if progress is not None:
                progress(stop - start)
    return np.ascontiguousarray(out.T)
