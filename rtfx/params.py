"""Declared parameters and their smoothing.

A parameter is declared once (name, unit, range, default, scale); presets, the CLI and the GUI
are built from that declaration. Any thread may set a *target*; the audio thread moves the
*current* value towards it at block boundaries, so a change never jumps (no zipper noise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """Declaration of one parameter.

    Args:
        name: identifier with its unit in it, e.g. ``"cutoff_hz"``, ``"gain_db"``.
        unit: unit shown to users ("Hz", "dB", "ms", "" for plain numbers).
        minimum, maximum: the allowed range, inclusive.
        default: value after construction.
        scale: "linear" or "log" (log: ramps and GUI knobs move in ratios; minimum must be > 0).
        ramp_ms: time a change takes to reach its target, in milliseconds (0: jumps at the
            next block boundary).
        doc: one line for users.
    """

    name: str
    unit: str
    minimum: float
    maximum: float
    default: float
    scale: str = "linear"
    ramp_ms: float = 30.0
    doc: str = ""

    def check(self, value: float, owner: str = "") -> float:
        """Return ``value`` as float, or raise ``ValueError`` naming the parameter and range."""
        where = f"{owner}: " if owner else ""
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}{self.name} must be a number, got {value!r}") from None
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            unit = f" {self.unit}" if self.unit else ""
            raise ValueError(
                f"{where}{self.name} = {value:g}{unit} is outside the allowed range "
                f"[{self.minimum:g}, {self.maximum:g}]{unit}"
            )
        return value


class Smoothed:
    """A value that ramps linearly (or in ratios, for log scale) towards a target.

    ``target`` may be written from any thread (a float store is atomic under the GIL);
    ``advance`` and ``current`` belong to the audio thread.
    """

    __slots__ = ("param", "target", "current", "_ramp_target", "_step", "_left", "_ramp_frames")

    def __init__(self, param: Param, value: float | None = None) -> None:
        self.param = param
        self.target = param.default if value is None else value
        self.current = self.target
        self._ramp_frames = 1
        self._left = 0

    def set_rate(self, samplerate: float) -> None:
        """Fix the ramp length in frames for this sample rate."""
        self._ramp_frames = max(1, round(self.param.ramp_ms * 1e-3 * samplerate))

    def snap(self) -> None:
        """Jump to the target (used in ``prepare``/``reset``, never mid-stream)."""
        self.current = self.target
        self._left = 0

    @property
    def settled(self) -> bool:
        """True when the value sits at its target (no ramp in progress, none pending)."""
        return self.current == self.target and self._left == 0

    def advance(self, frames: int) -> bool:
        """Move ``frames`` samples along the ramp; return True if the value changed."""
        target = self.target
        if self.settled:
            return False
        if self._left == 0 or self._ramp_target != target:
            # A new target: ramp from here to it over the full ramp time.
            self._ramp_target = target
            self._left = self._ramp_frames
            if self.param.scale == "log":
                self._step = (target / self.current) ** (1.0 / self._left)
            else:
                self._step = (target - self.current) / self._left
        taken = min(frames, self._left)
        self._left -= taken
        if self._left == 0:
            self.current = target
        elif self.param.scale == "log":
            self.current *= self._step**taken
        else:
            self.current += self._step * taken
        return True
