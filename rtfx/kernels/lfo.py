"""A low-frequency oscillator whose phase is a function of absolute sample time.

The phase (in cycles) is kept as a Python float64 and advanced by ``rate / samplerate`` per
sample, so any block partition gives the same values. Each channel is offset by
``stereo_cycles`` and each voice by ``1 / voices`` of a cycle. Values are unipolar, in [0, 1],
and both shapes start at 0 (phase 0) and peak at phase 1/2::

    sine:      u = sin^2(pi phase)              = (1 - cos(2 pi phase)) / 2
    triangle:  u = |2 frac(phase + 1/2) - 1|
"""
from __future__ import annotations

import math

import numpy as np
import torch

SHAPES = ("sine", "triangle")


def lfo_values(shape: str, phase: np.ndarray) -> np.ndarray:
    """The unipolar LFO at ``phase`` (cycles), in float64 numpy (for references and plots)."""
    if shape == "sine":
        return np.sin(np.pi * phase) ** 2
    return np.abs(2 * np.mod(phase + 0.5, 1.0) - 1)


class Lfo:
    """Renders ``(channels, voices, frames)`` LFO values for consecutive blocks.

    Args:
        shape: one of ``SHAPES``.
        channels, voices: the offsets' grid.
        max_frames: the longest block ``render`` gets.
        dtype: values' dtype (float64 where they set fractional delays).
    """

    def __init__(self, shape: str, channels: int, voices: int, max_frames: int, device="cpu",
                 dtype=torch.float64) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape = {shape!r}; choose one of {', '.join(SHAPES)}")
        self.shape = shape
        kw = dict(device=torch.device(device), dtype=dtype)
        self._steps = torch.arange(max_frames, **kw)
        self._voice = (torch.arange(voices, **kw) / voices).view(1, voices, 1)
        self._channel = torch.arange(channels, **kw).view(channels, 1, 1)
        # sine works on pi * phase, triangle on phase (one multiplication less per block)
        self._scale = math.pi if shape == "sine" else 1.0
        self._offsets = torch.empty(channels, voices, 1, **kw)  # scaled, for ``_stereo``
        self._stereo = None
        self._started = torch.empty(channels, voices, 1, **kw)
        self._values = torch.empty(channels * voices * max_frames, **kw)
        self._views: dict[int, tuple] = {}  # (values, steps) by point count, made on first use
        self.phase = 0.0

    def reset(self) -> None:
        self.phase = 0.0

    def values(self, points: int, cycles_per_sample: float, stereo_cycles: float,
               first: int = 0, stride: int = 1) -> torch.Tensor:
        """Values at samples ``first + j * stride`` (``j < points``) from the current phase.

        Returns a ``(channels, voices, points)`` view into an internal buffer; the phase does
        not move (call ``advance``).
        """
        views = self._views.get(points)
        if views is None:
            channels, voices = self._channel.shape[0], self._voice.shape[1]
            values = self._values[: channels * voices * points].view(channels, voices, points)
            views = self._views[points] = (values, self._steps[:points])
        values, steps = views
        if stereo_cycles != self._stereo:
            torch.add(self._voice, self._channel, alpha=stereo_cycles, out=self._offsets).mul_(self._scale)
            self._stereo = stereo_cycles
        start = self.phase + cycles_per_sample * first + (0.5 if self.shape == "triangle" else 0.0)
        started = torch.add(self._offsets, start * self._scale, out=self._started)
        torch.add(started, steps, alpha=cycles_per_sample * stride * self._scale, out=values)
        if self.shape == "sine":
            return values.sin_().square_()
        return values.remainder_(1.0).mul_(2.0).sub_(1.0).abs_()

    def advance(self, frames: int, cycles_per_sample: float) -> None:
        """Move the phase ``frames`` samples on."""
        self.phase = (self.phase + cycles_per_sample * frames) % 1.0
