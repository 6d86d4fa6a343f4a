"""Gain in dB, ramped per sample."""
from __future__ import annotations

import torch

from ..controls import LinearRamp
from ..effect import Effect
from ..params import Param
from ..spec import ProcessSpec


def db_to_linear(gain_db: float) -> float:
    """Amplitude factor of a gain in dB."""
    return 10 ** (gain_db / 20)


class GainRamp:
    """A linear gain that moves per sample across a block: the host sets where it goes
    (``move_to``, in ``_control``), the kernels ``apply`` it.

    Args:
        spec: the effect's spec (block size, device; with ``spec.capture`` the multiply always
            runs, else a steady unity gain returns the input itself).
        value: the starting gain, linear.
        always: never return the input itself (the caller writes into the result).
    """

    def __init__(self, spec: ProcessSpec, value: float = 1.0, always: bool = False) -> None:
        self._ramp = LinearRamp(spec.blocksize, spec.device)
        self._always = spec.capture or always
        self.snap(value)

    def snap(self, value: float) -> None:
        """Jump to ``value`` (reset): the next block starts there."""
        self.value = value
        self._unity = value == 1.0

    def move_to(self, value: float, frames: int) -> None:
        """The next block of ``frames`` ramps from the current gain to ``value``."""
        start, self.value = self.value, value
        self._unity = start == value == 1.0
        if not (self._unity and not self._always):
            self._ramp.set(start, value, frames)

    def factors(self, frames: int) -> torch.Tensor:
        """The ``(frames,)`` gains of the next block (device tensor; only with ``always``)."""
        return self._ramp.tensor[:frames]

    def apply(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``x`` ``(channels, frames)`` times the ramp, into ``out`` ``(channels, >= frames)``
        (or ``x`` itself at a steady unity gain outside capture)."""
        if self._unity and not self._always:
            return x
        frames = x.shape[-1]
        return torch.mul(x, self._ramp.tensor[:frames], out=out[:, :frames])


class Gain(Effect):
    """Multiply by ``10 ** (gain_db / 20)``; a change ramps sample by sample (no zipper)."""

    type_name = "gain"
    category = "utility"
    ramp_step = 0  # the gain ramps per sample within the block
    params = (Param("gain_db", "dB", -120.0, 48.0, 0.0, doc="gain"),)

    def _prepare(self, spec: ProcessSpec) -> None:
        self._out = torch.empty(spec.channels, spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._gain = GainRamp(spec)
        self._reset()

    def _reset(self) -> None:
        self._gain.snap(db_to_linear(self.value("gain_db")))

    def _control(self, frames: int) -> None:
        self._gain.move_to(db_to_linear(self.value("gain_db")), frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        return self._gain.apply(x, self._out)
