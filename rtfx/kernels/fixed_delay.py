"""A whole-sample delay of a block stream (latency compensation of dry paths)."""
from __future__ import annotations

import torch


class FixedDelay:
    """Delays ``(channels, frames)`` blocks by ``frames`` samples; state carries across blocks.

    Args:
        channels: number of channels.
        delay: delay in samples (>= 0).
        max_block: the longest block ``process`` gets.
        device, dtype: of the blocks.
    """

    def __init__(self, channels: int, delay: int, max_block: int, device="cpu", dtype=torch.float32) -> None:
        self.delay = delay
        # Two buffers [history | block]; the history moves to the other one after each block.
        self._buffers = [torch.zeros(channels, delay + max_block, device=device, dtype=dtype) for _ in range(2)]

    def reset(self) -> None:
        for buffer in self._buffers:
            buffer.zero_()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """The block ``delay`` samples ago, same shape as ``x``; a view valid until the next call."""
        frames, delay = x.shape[-1], self.delay
        current, other = self._buffers
        current[:, delay : delay + frames].copy_(x)
        other[:, :delay].copy_(current[:, frames : frames + delay])
        self._buffers = [other, current]
        return current[:, :frames]
