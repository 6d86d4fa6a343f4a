"""A low-frequency oscillator whose phase is a function of absolute sample time.

The phase (in cycles) is kept on the host as a Python float64 and advanced by
``rate / samplerate`` per sample, so any block partition gives the same values. The host
writes each row's starting phase and the phase step into ``Control``s (``set``); the kernels
(``render``) read them there, so a CUDA graph replays them with the values of every block.
Each channel is offset by ``stereo_cycles`` and each voice by ``1 / voices`` of a cycle; a new
channel offset can glide to its value linearly across a block (capture mode, where parameters
move once per block: a jump would step every modulated delay). Values are unipolar, in [0, 1],
and both shapes start at 0 (phase 0) and peak at phase 1/2::

    sine:      u = sin^2(pi phase)              = (1 - cos(2 pi phase)) / 2
    triangle:  u = |2 frac(phase + 1/2) - 1|
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..controls import Control

SHAPES = ("sine", "triangle")


def lfo_values(shape: str, phase: np.ndarray) -> np.ndarray:
    """The unipolar LFO at ``phase`` (cycles), in float64 numpy (for references and plots)."""
    if shape == "sine":
        return np.sin(np.pi * phase) ** 2
    return np.abs(2 * np.mod(phase + 0.5, 1.0) - 1)


class Lfo:
    """Renders ``(channels, voices, points)`` LFO values for consecutive blocks.

    Per block: ``set`` (host: where the phase starts, how fast it moves), ``render``
    (kernels), ``advance`` (host). ``values`` does ``set`` and ``render`` at once.

    Args:
        shape: one of ``SHAPES``.
        channels, voices: the offsets' grid.
        max_frames: the most points ``render`` gets.
        dtype: values' dtype (float64 where they set fractional delays).
    """

    def __init__(self, shape: str, channels: int, voices: int, max_frames: int, device="cpu",
                 dtype=torch.float64) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape = {shape!r}; choose one of {', '.join(SHAPES)}")
        self.shape = shape
        kw = dict(device=torch.device(device), dtype=dtype)
        self._steps = torch.arange(max_frames, **kw)
        self._voice = np.arange(voices).reshape(1, voices, 1) / voices
        self._channel = np.arange(channels, dtype=np.float64).reshape(channels, 1, 1)
        # sine works on pi * phase, triangle on phase (one multiplication less per block)
        self._scale = math.pi if shape == "sine" else 1.0
        self._offsets = np.empty((channels, voices, 1))  # scaled, for ``_offset_cycles``
        self._offset_cycles = None
        self._start = Control((channels, voices, 1), device, dtype)  # scaled phase of each row's first point
        self._step = Control((channels, 1, 1), device, dtype)  # scaled phase step from one point to the next
        self._step_key = None  # (cycles per point, glide per point) ``_step`` holds
        self._values = torch.empty(channels * voices * max_frames, **kw)
        self._views: dict[int, tuple] = {}  # (values, steps) by point count, made on first use
        self.reset()

    def reset(self) -> None:
        self.phase = 0.0
        self._stereo = None  # the last ``set``'s channel offset (None: nothing to glide from)

    def set(self, cycles_per_sample: float, stereo_cycles: float, first: int = 0, stride: int = 1,
            glide: int = 0) -> None:
        """The next ``render`` gives the values at samples ``first + j * stride`` from the
        current phase, each channel ``stereo_cycles`` after the one before. With ``glide`` > 0
        (the block's frames) that offset moves linearly per sample from the last ``set``'s
        (at sample -1) to ``stereo_cycles`` (at sample ``glide - 1``). Host side."""
        slope = 0.0  # cycles per sample by which the offset moves
        if glide and self._stereo is not None:
            slope = (stereo_cycles - self._stereo) / glide
        self._stereo = stereo_cycles
        offset = stereo_cycles + slope * (first + 1 - glide)  # at sample ``first``
        if offset != self._offset_cycles:
            np.add(self._voice, self._channel * offset, out=self._offsets)
            self._offsets *= self._scale
            self._offset_cycles = offset
        start = self.phase + cycles_per_sample * first + (0.5 if self.shape == "triangle" else 0.0)
        np.add(self._offsets, start * self._scale, out=self._start.values, casting="same_kind")
        self._start.commit()
        key = (cycles_per_sample * stride, slope * stride)
        if key != self._step_key:
            np.multiply(self._channel, key[1] * self._scale, out=self._step.values, casting="same_kind")
            self._step.values += key[0] * self._scale
            self._step.commit()
            self._step_key = key

    def render(self, points: int) -> torch.Tensor:
        """The values ``set`` asked for, ``(channels, voices, points)``: a view into an internal
        buffer. Kernels only."""
        views = self._views.get(points)
        if views is None:
            channels, voices = self._offsets.shape[:2]
            values = self._values[: channels * voices * points].view(channels, voices, points)
            views = self._views[points] = (values, self._steps[:points])
        values, steps = views
        torch.addcmul(self._start.tensor, steps, self._step.tensor, out=values)
        if self.shape == "sine":
            return values.sin_().square_()
        return values.remainder_(1.0).mul_(2.0).sub_(1.0).abs_()

    def values(self, points: int, cycles_per_sample: float, stereo_cycles: float,
               first: int = 0, stride: int = 1) -> torch.Tensor:
        """``set`` then ``render``: values at samples ``first + j * stride`` (``j < points``);
        the phase does not move (call ``advance``)."""
        self.set(cycles_per_sample, stereo_cycles, first, stride)
        return self.render(points)

    def advance(self, frames: int, cycles_per_sample: float) -> None:
        """Move the phase ``frames`` samples on."""
        self.phase = (self.phase + cycles_per_sample * frames) % 1.0
