"""The pre-delay of the reverbs: a whole-sample delay whose changes crossfade."""
from __future__ import annotations

import numpy as np
import torch

from ..controls import Control
from . import fused, fused_lines
from .fdn import DelayLines


class PreDelay:
    """A whole-sample delay on every channel; a change crossfades from the old delay to the new
    one (no pitch glide, no click).

    Per block: ``before_block(frames)`` on the host, then ``run(x)``; ``process(x)`` does both.

    Args:
        channels: rows of the blocks. max_delay: the longest delay in samples. max_block:
            the longest block. fade: crossfade length in samples. device: torch device.
        capture: ``run`` issues the same kernels on every block (it always reads both delays
            and crossfades; the weights are 1 when no crossfade runs). The crossfade's weights
            are written by the host, only while they change. On CUDA with Triton a block is one
            kernel (``fused_lines.predelay``).
    """

    def __init__(self, channels: int, max_delay: int, max_block: int, fade: int, device,
                 capture: bool = False) -> None:
        self.capture = capture
        self._fused = capture and fused.available(device)
        self._lines = DelayLines(channels, max_delay, max_block, device, capture)
        f32 = dict(device=device, dtype=torch.float32)
        self._old = torch.empty(channels, max_block, **f32)
        self._new = torch.empty(channels, max_block, **f32)
        self._fade = max(1, int(fade))
        self._weights = Control(max_block, device)  # of the new delay, per frame of the block
        self._steps = np.arange(1, max_block + 1, dtype=np.float64)
        self._weighted = None  # (done, frames) the weights were written for
        self._delay = self._target = None
        self._faded = 0  # frames of the crossfade done; equal to _fade when none is running
        self._done = 0  # the same, before the current block
        self._reads = Control(2, device, torch.int64)  # capture: ring indices of the new and old reads

    def set_delay(self, delay: int) -> None:
        """The delay in samples (>= 0). Taken at once before the first block (and after
        ``reset``); later, crossfaded to, one crossfade at a time."""
        self._target = int(delay)
        if self._delay is None:
            self._delay, self._faded = self._target, self._fade

    def before_block(self, frames: int) -> None:
        """Host side of the next block of ``frames``: start a crossfade to a new delay."""
        self._lines.before_block(frames)
        if self._faded == self._fade and self._target != self._delay:
            self._old_delay, self._delay, self._faded = self._delay, self._target, 0
        self._done = self._faded
        self._faded = min(self._fade, self._faded + frames)
        if self.capture or self._done < self._fade:
            self._write_weights(frames)
        if self.capture:
            t0, length = self._lines.t0, self._lines.length
            old = self._delay if self._done == self._fade else self._old_delay
            self._reads.set([(t0 - self._delay) % length, (t0 - old) % length])

    def _write_weights(self, frames: int) -> None:
        """The new delay's weight at each frame of the block, ``done`` frames into the
        crossfade (1 after it); written only when it changes."""
        key = (self._done, frames) if self._done < self._fade else "done"
        if key != self._weighted:
            values = self._weights.values[:frames]
            np.minimum((self._steps[:frames] + self._done) / self._fade, 1.0, out=values, casting="unsafe")
            self._weights.commit()
            self._weighted = key

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(channels, n)`` delayed; a view into a buffer (valid until the next call)."""
        n = x.shape[-1]
        if self._fused:
            lines = self._lines
            return fused_lines.predelay(lines.ring, lines.origin, self._reads.tensor, self._weights.tensor, x, self._old[:, :n])
        self._lines.write(x)
        if self.capture:
            reads = self._reads.tensor
            new = self._lines.read_at(reads[:1], self._new[:, :n])
            old = self._lines.read_at(reads[1:], self._old[:, :n])
        else:
            new = self._lines.read_whole(self._delay, self._new[:, :n])
            if self._done == self._fade:
                return new
            old = self._lines.read_whole(self._old_delay, self._old[:, :n])
        return torch.lerp(old, new, self._weights.tensor[:n], out=self._old[:, :n])

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``before_block`` and ``run`` for the block ``x`` ``(channels, n)``. Not with
        ``capture``: a graph replays ``run`` alone, so the host must call ``before_block``."""
        if self.capture:
            raise RuntimeError("PreDelay with capture: call before_block(frames) on the host (in _control), run(x) in _process")
        self.before_block(x.shape[-1])
        return self.run(x)

    def reset(self) -> None:
        self._lines.reset()
        self._delay = None
