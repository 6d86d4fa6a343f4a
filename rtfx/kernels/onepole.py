"""A streaming one-pole low-pass, ``y[n] = (1 - a) x[n] + a y[n-1]``, one matmul per block.

For a block of ``L`` samples and the previous output ``s``::

    y = x @ U + s * p        U[j, i] = (1 - a) a^(i - j) for i >= j, else 0;   p[i] = a^(i + 1)

``U`` is Toeplitz, so its leading ``L x L`` corner serves every shorter block; it is rebuilt
(only as far as the longest block asks) when ``a`` changes, by ``process`` or, ahead of the
kernels (capture mode: ``process`` then never rebuilds), by ``build``.
"""
from __future__ import annotations

import math

import torch


def lowpass_pole(cutoff_hz: float, samplerate: float) -> float:
    """The pole ``a = exp(-2 pi fc / fs)`` (fc capped at 0.45 fs)."""
    return math.exp(-2 * math.pi * min(cutoff_hz, 0.45 * samplerate) / samplerate)


class OnePoleLowpass:
    """One-pole low-pass on ``(channels, frames)`` float32 blocks, ``frames <= max_block``."""

    def __init__(self, channels: int, max_block: int, device="cpu") -> None:
        f32 = dict(device=torch.device(device), dtype=torch.float32)
        steps = torch.arange(max_block, **f32)
        lag = steps - steps[:, None]  # i - j
        # a^lag with the lower triangle pushed to a huge exponent, so that it underflows to 0.
        self._lag = torch.where(lag >= 0, lag, torch.full_like(lag, 1e6))
        self._steps = steps + 1
        self._matrix = torch.zeros(max_block, max_block, **f32)
        self._powers = torch.zeros(max_block, **f32)
        self._state = torch.zeros(channels, 1, **f32)
        self.pole = 0.0
        self._built = 0  # leading rows/columns of the matrix valid for ``pole``

    def set_pole(self, pole: float) -> None:
        """Set ``a`` in [0, 1); the state is kept."""
        if pole != self.pole:
            self.pole = pole
            self._built = 0

    def reset(self) -> None:
        self._state.zero_()

    def build(self, frames: int) -> None:
        """Make the matrix ready for blocks of up to ``frames`` samples (no-op if it is)."""
        if frames > self._built:
            corner = self._matrix[:frames, :frames]
            torch.pow(self.pole, self._lag[:frames, :frames], out=corner).mul_(1 - self.pole)
            torch.pow(self.pole, self._steps[:frames], out=self._powers[:frames])
            self._built = frames

    def process(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` ``(channels, L)`` into ``out`` ``(channels, L)``; returns ``out``."""
        frames = x.shape[-1]
        self.build(frames)
        torch.mul(self._state, self._powers[:frames], out=out)
        out.addmm_(x, self._matrix[:frames, :frames])
        self._state.copy_(out[:, frames - 1 :])
        return out
