"""Gain in dB, ramped per sample."""
from __future__ import annotations

import torch

from ..effect import Effect
from ..params import Param
from ..spec import ProcessSpec


def db_to_linear(gain_db: float) -> float:
    """Amplitude factor of a gain in dB."""
    return 10 ** (gain_db / 20)


def apply_gain(effect: Effect, x: torch.Tensor, start: float, end: float, out: torch.Tensor) -> torch.Tensor:
    """``x`` times a linear factor ramping per sample from ``start`` to ``end``.

    Returns ``x`` itself at unity gain, else a view into ``out`` (``(channels, blocksize)``).
    """
    if start == end == 1.0:
        return x
    frames = x.shape[-1]
    scale = end if start == end else effect._linear_ramp(start, end, frames)
    return torch.mul(x, scale, out=out[:, :frames])


class Gain(Effect):
    """Multiply by ``10 ** (gain_db / 20)``; a change ramps sample by sample (no zipper)."""

    type_name = "gain"
    category = "utility"
    params = (Param("gain_db", "dB", -120.0, 48.0, 0.0, doc="gain"),)

    def _prepare(self, spec: ProcessSpec) -> None:
        self._out = torch.empty(spec.channels, spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._reset()

    def _reset(self) -> None:
        self._linear = db_to_linear(self.value("gain_db"))

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        start, self._linear = self._linear, db_to_linear(self.value("gain_db"))
        return apply_gain(self, x, start, self._linear, self._out)
