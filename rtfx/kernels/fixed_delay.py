"""A whole-sample delay of a block stream (latency compensation of dry paths)."""
from __future__ import annotations

import torch


class FixedDelay:
    """Delays ``(channels, frames)`` blocks by ``delay`` samples; state carries across blocks.

    Args:
        channels: number of channels.
        delay: delay in samples (>= 0).
        max_block: the longest block ``process`` gets.
        device, dtype: of the blocks.
    """

    def __init__(self, channels: int, delay: int, max_block: int, device="cpu", dtype=torch.float32) -> None:
        self.delay = delay
        self._history = torch.zeros(channels, delay, device=device, dtype=dtype)  # the last ``delay`` samples
        self._joined = torch.zeros(channels * (delay + max_block), device=device, dtype=dtype)

    def reset(self) -> None:
        self._history.zero_()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """The block ``delay`` samples ago, same shape as ``x``; a view valid until the next call.

        Two kernels on the same buffers every block (a CUDA graph can replay it): history and
        block joined, then the joined tail kept as the next history."""
        channels, frames = x.shape
        joined = self._joined[: channels * (self.delay + frames)].view(channels, self.delay + frames)
        torch.cat((self._history, x), 1, out=joined)
        self._history.copy_(joined[:, frames:])
        return joined[:, :frames]
