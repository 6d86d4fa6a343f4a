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
        # [history | block]; after each block the history moves to the front via ``_spare``.
        self._buffer = torch.zeros(channels, delay + max_block, device=device, dtype=dtype)
        self._spare = torch.zeros(channels, delay, device=device, dtype=dtype)
        self._out = torch.zeros(channels, max_block, device=device, dtype=dtype)

    def reset(self) -> None:
        self._buffer.zero_()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """The block ``delay`` samples ago, same shape as ``x``; a view valid until the next call.

        Always the same buffers (a CUDA graph can replay it)."""
        frames, delay = x.shape[-1], self.delay
        self._buffer[:, delay : delay + frames].copy_(x)
        out = self._out[:, :frames]
        out.copy_(self._buffer[:, :frames])
        self._spare.copy_(self._buffer[:, frames : frames + delay])
        self._buffer[:, :delay].copy_(self._spare)
        return out
