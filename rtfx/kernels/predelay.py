"""The pre-delay of the reverbs: a whole-sample delay whose changes crossfade."""
from __future__ import annotations

import torch

from ..controls import Control
from .fdn import DelayLines


class PreDelay:
    """A whole-sample delay on every channel; a change crossfades from the old delay to the new
    one (no pitch glide, no click).

    Per block: ``before_block(frames)`` on the host, then ``run(x)``; ``process(x)`` does both.

    Args:
        channels: rows of the blocks. max_delay: the longest delay in samples. max_block:
            the longest block. fade: crossfade length in samples. device: torch device.
        capture: ``run`` issues the same kernels on every block (it always reads both delays
            and crossfades; the weights are 1 when no crossfade runs).
    """

    def __init__(self, channels: int, max_delay: int, max_block: int, fade: int, device,
                 capture: bool = False) -> None:
        self.capture = capture
        self._lines = DelayLines(channels, max_delay, max_block, device, capture)
        f32 = dict(device=device, dtype=torch.float32)
        self._old = torch.empty(channels, max_block, **f32)
        self._new = torch.empty(channels, max_block, **f32)
        self._weights = torch.empty(max_block, **f32)
        self._steps = torch.arange(1, max_block + 1, **f32)
        self._fade = max(1, int(fade))
        self._delay = self._target = None
        self._faded = 0  # frames of the crossfade done; equal to _fade when none is running
        self._done = 0  # the same, before the current block
        self._reads = Control(2, device, torch.int64)  # capture: ring indices of the new and old reads
        self._done_control = Control(1, device)  # capture: _done

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
        if self.capture:
            t0, length = self._lines.t0, self._lines.length
            old = self._delay if self._done == self._fade else self._old_delay
            self._reads.set([(t0 - self._delay) % length, (t0 - old) % length])
            if self._done_control.values[0] != self._done:
                self._done_control.set(self._done)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(channels, n)`` delayed; a view into a buffer (valid until the next call)."""
        n = x.shape[-1]
        self._lines.write(x)
        if self.capture:
            reads = self._reads.tensor
            new = self._lines.read_at(reads[:1], self._new[:, :n])
            old = self._lines.read_at(reads[1:], self._old[:, :n])
            return self._crossfade(old, new, self._done_control.tensor)
        new = self._lines.read_whole(self._delay, self._new[:, :n])
        if self._done == self._fade:
            return new
        old = self._lines.read_whole(self._old_delay, self._old[:, :n])
        return self._crossfade(old, new, self._done)

    def _crossfade(self, old: torch.Tensor, new: torch.Tensor, done: int | torch.Tensor) -> torch.Tensor:
        """From ``old`` to ``new`` ``(channels, n)``, ``done`` frames into the crossfade."""
        n = new.shape[-1]
        weights = torch.add(self._steps[:n], done, out=self._weights[:n])
        weights.mul_(1.0 / self._fade).clamp_(max=1.0)
        return torch.lerp(old, new, weights, out=self._old[:, :n])

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
