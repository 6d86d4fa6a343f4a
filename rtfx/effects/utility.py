"""Utility stages: pan, balance, polarity, channel routing (channel matrices) and a DC blocker.

Pan, balance, polarity and routing are each a ``(C, C)`` matrix applied to the block
(``y = M @ x``, one small GEMM). When a parameter moves, the matrix ramps per sample from the
one last applied to the new one, so a pan sweep is as smooth as its signal.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..controls import Control, LinearRamp
from ..effect import Effect
from ..params import Param
from ..spec import ProcessSpec
from .sos_effect import SosEffect


class ChannelMatrix(Effect):
    """Base of effects that mix channels by a matrix; subclasses implement ``matrix()``.

    ``matrix()`` returns the float64 ``(C, C)`` matrix for the current parameter values
    (``C = spec.channels``); ``min_channels`` is checked in ``prepare``.
    """

    min_channels = 1
    max_channels: int | None = None

    def matrix(self) -> np.ndarray:
        raise NotImplementedError

    def _prepare(self, spec: ProcessSpec) -> None:
        fits = self.max_channels is None or spec.channels <= self.max_channels
        if spec.channels < self.min_channels or not fits:
            wanted = (f"{self.min_channels}" if self.min_channels == self.max_channels
                      else f"at least {self.min_channels}")
            raise ValueError(f"{self.type_name}: needs {wanted} channel(s), the stream has {spec.channels}")
        f32 = dict(device=spec.device, dtype=spec.dtype)
        self._matrices = Control((2, spec.channels, spec.channels), spec.device)  # [M0, M1 - M0]
        self._fraction = LinearRamp(spec.blocksize, spec.device)
        self._out = torch.empty(spec.channels, spec.blocksize, **f32)
        self._delta = torch.empty_like(self._out)
        self._reset()

    def _reset(self) -> None:
        self._wanted = self._used = self.matrix()  # float64
        self._written = None

    def _update(self) -> None:
        self._wanted = self.matrix()

    def _control(self, frames: int) -> None:
        """This block goes from ``_used`` to ``_wanted``: y[t] = M0 x[t] + r[t] (M1 - M0) x[t],
        the ramp r rising from 1/frames to 1."""
        start, end = self._used, self._wanted
        if self._written is None or self._written[0] is not start or self._written[1] is not end:
            self._matrices.set(np.stack([start, end - start]))
            self._written = (start, end)
        self._moving = end is not start
        self._fraction.set(0.0, 1.0, frames)
        self._used = end

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        matrices = self._matrices.tensor
        out = torch.matmul(matrices[0], x, out=self._out[:, :frames])
        if self._moving or self.spec.capture:
            delta = torch.matmul(matrices[1], x, out=self._delta[:, :frames])
            out.addcmul_(delta, self._fraction.tensor[:frames])
        return out


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power (-3 dB centre) pan law: ``(cos a, sin a)``, ``a = (pan + 1) pi / 4``.

    ``pan`` -1 is hard left ``(1, 0)``, 0 the centre ``(0.7071, 0.7071)``, +1 hard right.
    """
    angle = (pan + 1) * math.pi / 4
    return math.cos(angle), math.sin(angle)


class Pan(ChannelMatrix):
    """Place the mono sum ``(L + R) / 2`` of a stereo stream with the constant-power pan law."""

    type_name = "pan"
    category = "utility"
    params = (Param("pan", "", -1.0, 1.0, 0.0, doc="position: -1 hard left, 0 centre, +1 hard right"),)
    min_channels = max_channels = 2

    def matrix(self) -> np.ndarray:
        left, right = pan_gains(self.value("pan"))
        return np.array([[left, left], [right, right]]) / 2


def balance_gains(balance: float) -> tuple[float, float]:
    """Stereo balance: the side turned away from falls as ``cos(pi/2 |balance|)``, the other
    stays at 1. ``balance`` -1 keeps only the left channel, +1 only the right."""
    fade = math.cos(math.pi / 2 * abs(balance))
    return (1.0, fade) if balance <= 0 else (fade, 1.0)


class Balance(ChannelMatrix):
    """Stereo balance: attenuate one side of a stereo stream, keeping its image."""

    type_name = "balance"
    category = "utility"
    params = (Param("balance", "", -1.0, 1.0, 0.0, doc="-1 left only, 0 unchanged, +1 right only"),)
    min_channels = max_channels = 2

    def matrix(self) -> np.ndarray:
        return np.diag(balance_gains(self.value("balance")))


POLARITY_CHANNELS = ("all", "left", "right")


class Polarity(ChannelMatrix):
    """Invert the polarity (multiply by -1) of every channel, or of the left or right one.

    Args:
        invert: "all", "left" (channel 0) or "right" (channel 1; needs 2 channels or more).
    """

    type_name = "polarity"
    category = "utility"
    fields = {"invert": {"type": "string", "enum": list(POLARITY_CHANNELS)}}
    example_args = {"invert": "all"}

    def __init__(self, invert: str = "all", **values: float) -> None:
        if invert not in POLARITY_CHANNELS:
            raise ValueError(f"polarity: invert = {invert!r}; choose one of {', '.join(POLARITY_CHANNELS)}")
        self.invert = invert
        self.min_channels = 2 if invert == "right" else 1
        super().__init__(**values)

    def matrix(self) -> np.ndarray:
        signs = np.ones(self.spec.channels)
        if self.invert == "all":
            signs[:] = -1.0
        else:
            signs[POLARITY_CHANNELS.index(self.invert) - 1] = -1.0
        return np.diag(signs)

    def _preset_fields(self) -> dict:
        return {"invert": self.invert}


ROUTING_MODES = ("stereo", "mono", "left", "right", "swap")


class Routing(ChannelMatrix):
    """Channel routing within the stream's channel count.

    Args:
        mode: "stereo" (unchanged), "mono" (every channel gets the mean of all), "left" (channel
            0 to channels 0 and 1), "right" (channel 1 to channels 0 and 1), "swap" (exchange
            channels 0 and 1). Channels past the first two pass unchanged in the last three;
            those need 2 channels or more.
    """

    type_name = "routing"
    category = "utility"
    fields = {"mode": {"type": "string", "enum": list(ROUTING_MODES)}}
    example_args = {"mode": "swap"}

    def __init__(self, mode: str = "stereo", **values: float) -> None:
        if mode not in ROUTING_MODES:
            raise ValueError(f"routing: mode = {mode!r}; choose one of {', '.join(ROUTING_MODES)}")
        self.mode = mode
        self.min_channels = 2 if mode in ("left", "right", "swap") else 1
        super().__init__(**values)

    def matrix(self) -> np.ndarray:
        channels = self.spec.channels
        if self.mode == "mono":
            return np.full((channels, channels), 1.0 / channels)
        m = np.eye(channels)
        if self.mode != "stereo":
            sources = {"left": (0, 0), "right": (1, 1), "swap": (1, 0)}[self.mode]
            m[:2, :2] = 0.0
            m[0, sources[0]] = m[1, sources[1]] = 1.0
        return m

    def _preset_fields(self) -> dict:
        return {"mode": self.mode}


def dc_blocker_sections(cutoff_hz, samplerate: float) -> np.ndarray:
    """One-pole high-passes ``(S, 1, 6)`` for an array of cutoffs: ``H(z) = (1+p)/2 (1 - z^-1)
    / (1 - p z^-1)``, ``p = exp(-2 pi cutoff / samplerate)``: a zero at DC, unity gain at Nyquist."""
    p = np.exp(-2 * np.pi * np.atleast_1d(np.asarray(cutoff_hz, dtype=np.float64)) / samplerate)
    sos = np.zeros(p.shape + (1, 6))
    sos[:, 0, 0], sos[:, 0, 1], sos[:, 0, 3], sos[:, 0, 4] = (1 + p) / 2, -(1 + p) / 2, 1.0, -p
    return sos


class DcBlocker(SosEffect):
    """Remove DC with a one-pole high-pass (at 10 Hz: -0.04 dB at 100 Hz, -3 dB near 10 Hz)."""

    type_name = "dc_blocker"
    category = "utility"
    params = (Param("cutoff_hz", "Hz", 5.0, 20.0, 10.0, scale="log", doc="high-pass corner"),)

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return dc_blocker_sections(values["cutoff_hz"], self.spec.samplerate)
