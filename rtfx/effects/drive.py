"""Overdrive, distortion and fuzz: a static waveshaper run at 1, 2, 4 or 8 times the sample rate.

Per block (``C`` channels, ``n`` frames)::

    x -> * drive (ramped per sample) -> up by L -> f(u + bias) - f(bias) -> down by L
      -> DC blocker (10 Hz) + tone low-pass (RBJ, Q 0.7071), one SOS cascade -> * level

Shapers ``f``: overdrive ``tanh(u)``; distortion ``tanh(u)`` for ``u >= 0`` and ``tanh(2u)/2``
below (a diode pair with unequal forward voltages: the negative half clips at half the level,
which adds even harmonics); fuzz ``u / (1 + u^4)^(1/4)`` (a hard knee at +-1), biased by
default. Subtracting ``f(bias)`` keeps silence silent; the DC blocker removes the DC that an
asymmetric shaper makes from a signal.

Up/down sampling is ``rtfx.kernels.oversample.Oversampler``: linear phase, so the output is
delayed by ``latency`` frames (82 for L = 2, 4, 8; 0 for L = 1); ``mix`` and bypass blend
with the input delayed to match (``Effect.latency``). On a CUDA device with Triton, drive, up,
shaper and down are two kernels per block (``rtfx.kernels.fused_drive``, the same filters).

Aliasing, measured by ``tests/test_drive.py`` (a 5 kHz sine of peak 0.5 at 48 kHz, bias 0, tone
20 kHz; the largest component that is not DC or a harmonic of 5 kHz, relative to the
fundamental; Hann-windowed FFT of one steady second). At drive 18 dB (tested)::

    oversample       1          2          4          8
    overdrive    -25.8 dBc  -59.3 dBc  -120.4 dBc  -133.6 dBc  (8x: the float32 floor)
    distortion   -23.2 dBc  -45.4 dBc   -72.6 dBc  -100.1 dBc
    fuzz         -23.9 dBc  -51.7 dBc   -84.5 dBc  -132.3 dBc

At drive 30 dB the harmonics reach further and 8x gives -78 (overdrive), -61 (distortion),
-63 dBc (fuzz); a plain hard clip at 18 dB gave only -65 dBc at 8x, hence fuzz's smooth knee.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..controls import Control
from ..design import design_biquad
from ..effect import Effect
from ..kernels import fused
from ..kernels.fused_drive import FusedShaper
from ..kernels.iir import SosFilter
from ..kernels.oversample import FACTORS, Oversampler, check_factor, latency_frames
from ..params import Param
from ..spec import ProcessSpec
from .gain import GainRamp, db_to_linear
from .utility import dc_blocker_sections

DC_BLOCK_HZ = 10.0
TONE_Q = 0.7071


def drive_params(drive_db: float, bias: float, tone_hz: float, level_db: float) -> tuple[Param, ...]:
    """The four parameters of a drive, with the given defaults."""
    return (
        Param("drive_db", "dB", 0.0, 48.0, drive_db, doc="gain into the clipper"),
        Param("bias", "", -0.5, 0.5, bias, doc="offset added before the clipper (asymmetry)"),
        Param("tone_hz", "Hz", 500.0, 20000.0, tone_hz, scale="log", doc="post-clip low-pass corner"),
        Param("level_db", "dB", -48.0, 12.0, level_db, doc="output level"),
    )


class Drive(Effect):
    """Base of the drives: oversampled waveshaper, DC blocker, tone and level.

    Args:
        oversample: 1, 2, 4 or 8; the shaper runs at this multiple of the sample rate.

    Subclasses implement the shaper twice: ``shape_(u, scratch)`` in place on a tensor ``u``
    (``scratch`` is a free buffer of its shape; returns ``u``) and ``curve(u)`` on a float.
    """

    category = "drive"
    fields = {"oversample": {"type": "integer", "enum": list(FACTORS)}}
    example_args = {"oversample": 4}

    def __init__(self, oversample: int = 4, **values: float) -> None:
        self.oversample = check_factor(oversample, f"{self.type_name}: oversample")
        self.latency = latency_frames(self.oversample)  # frames the output lags the input
        super().__init__(**values)

    def shape_(self, u: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def curve(self, u: float) -> float:
        raise NotImplementedError

    def design(self) -> np.ndarray:
        """DC blocker and tone low-pass as ``(2, 6)`` sections for the current parameters."""
        rate = self.spec.samplerate
        tone = min(self.value("tone_hz"), 0.45 * rate)  # below Nyquist at low sample rates
        return np.vstack([dc_blocker_sections(DC_BLOCK_HZ, rate)[0], design_biquad("lowpass", tone, rate, TONE_Q)])

    def _prepare(self, spec: ProcessSpec) -> None:
        f32 = dict(device=spec.device, dtype=spec.dtype)
        factor = self.oversample
        self._out = torch.empty(spec.channels, spec.blocksize, **f32)
        self._fused = (FusedShaper(factor, self.type_name, spec.channels, spec.blocksize, spec.device)
                       if fused.available(spec.device) else None)
        self._resampler = None
        if self._fused is None:  # the torch path's buffers
            self._driven = torch.empty(spec.channels, spec.blocksize, **f32)
            scratch = torch.empty(spec.channels * spec.blocksize * factor, **f32)
            self._scratch = [scratch[: spec.channels * n * factor].view(spec.channels, n * factor)
                             for n in range(spec.blocksize + 1)]  # by base-rate frames
            if factor > 1:
                self._resampler = Oversampler(factor, spec.channels, spec.blocksize, spec.device, spec.capture)
        self.sections = self._applied = self.design()
        self._designed_tone = self.value("tone_hz")
        self._post = SosFilter(self.sections, spec.channels, spec.blocksize, spec.device)
        self._drive, self._level = GainRamp(spec, always=True), GainRamp(spec)  # u is changed in place
        self._bias = Control(2, spec.device)  # [bias, curve(bias)]
        self._bias_written = None
        self._reset()

    def _update(self) -> None:
        tone = self.value("tone_hz")
        if tone != self._designed_tone:  # the other parameters leave the filters alone
            self._designed_tone = tone
            sections = self.design()
            if not np.array_equal(sections, self.sections):
                self.sections = sections

    def _reset(self) -> None:
        for stage in (self._resampler, self._fused):
            if stage is not None:
                stage.reset()
        self._post.reset()
        self._drive.snap(db_to_linear(self.value("drive_db")))
        self._level.snap(db_to_linear(self.value("level_db")))

    def _control(self, frames: int) -> None:
        self._drive.move_to(db_to_linear(self.value("drive_db")), frames)
        self._level.move_to(db_to_linear(self.value("level_db")), frames)
        bias = self.value("bias")
        if bias != self._bias_written:
            self._bias.set([bias, self.curve(bias)])
            self._bias_written = bias
        if self._fused is not None:
            self._fused.before_block(frames)
        if self._applied is not self.sections:
            self._post.set_sos(self.sections, rebalance=not self.ramping)
            self._applied = self.sections
        self._post.before_block(frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        if self._fused is not None:
            u = self._fused.run(x, self._drive.factors(x.shape[-1]), self._bias.tensor)
        else:
            u = self._shape_block(x)
        if self.spec.capture and self._post.one_kernel(x.shape[-1]):  # the level rides on the filter's kernel
            return self._post.process_one(u, gain_out=self._level.factors(x.shape[-1]))
        return self._level.apply(self._post.process(u), self._out)

    def _shape_block(self, x: torch.Tensor) -> torch.Tensor:
        """Drive, up-sampling, shaper and down-sampling as torch ops."""
        u = self._drive.apply(x, self._driven)
        if self._resampler is not None:
            u = self._resampler.up(u)
        biased = self.spec.capture or self.value("bias") != 0.0
        if biased:
            u.add_(self._bias.tensor[0])
        u = self.shape_(u, self._scratch[x.shape[-1]])
        if biased:
            u.sub_(self._bias.tensor[1])
        if self._resampler is not None:
            u = self._resampler.down(u)
        return u

    def _preset_fields(self) -> dict:
        return {"oversample": self.oversample}


class Overdrive(Drive):
    """Soft clipping: ``tanh``."""

    type_name = "overdrive"
    params = drive_params(drive_db=18.0, bias=0.0, tone_hz=6000.0, level_db=-6.0)

    def shape_(self, u, scratch):
        return u.tanh_()

    def curve(self, u: float) -> float:
        return math.tanh(u)


class Distortion(Drive):
    """Asymmetric diode-style clipping: ``tanh(u)`` above 0, ``tanh(2u)/2`` below."""

    type_name = "distortion"
    params = drive_params(drive_db=24.0, bias=0.0, tone_hz=5000.0, level_db=-6.0)

    def shape_(self, u, scratch):
        negative = torch.mul(u, 2.0, out=scratch).tanh_().clamp_(max=0.0)
        return u.tanh_().clamp_(min=0.0).add_(negative, alpha=0.5)

    def curve(self, u: float) -> float:
        return math.tanh(u) if u >= 0 else 0.5 * math.tanh(2 * u)


class Fuzz(Drive):
    """Hard-knee clipping of a biased signal: ``u / (1 + u^4)^(1/4)``, flat at +-1 beyond the
    knee like a hard clip, but smooth, so its harmonics fall fast enough to oversample."""

    type_name = "fuzz"
    params = drive_params(drive_db=30.0, bias=0.2, tone_hz=4000.0, level_db=-6.0)

    def shape_(self, u, scratch):
        fourth = torch.mul(u, u, out=scratch).square_()
        return u.mul_(fourth.add_(1.0).sqrt_().rsqrt_())  # pow_(-0.25) took 3x as long

    def curve(self, u: float) -> float:
        return u / (1 + u**4) ** 0.25
