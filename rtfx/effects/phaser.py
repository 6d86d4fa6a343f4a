"""Phaser: a chain of first-order all-passes swept by an LFO, with feedback, mixed with the dry
signal (mix 0.5 by default) so that the all-passes' phase turns into moving notches.

The break frequency sweeps exponentially, ``fc = low_hz * (high_hz / low_hz) ** u(t)``, and
is updated every ``CONTROL_STEP`` samples at multiples of ``CONTROL_STEP`` in absolute sample
time (``rtfx.kernels.allpass`` runs each step as one matrix; in capture mode, where parameters
move once per block, it runs half steps, the feedback ramping across the block from one to the
next). Each stage's coefficient is
``a = (tan(pi fc / fs) - 1) / (tan(pi fc / fs) + 1) = tan(pi fc / fs - pi / 4)``.
With ``N`` stages, no feedback and mix 0.5, the notches are where the chain's phase is an odd
multiple of 180 degrees: ``tan(pi f / fs) = tan(pi fc / fs) * tan((2m + 1) pi / (2N))``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..controls import Control
from ..effect import Effect
from ..kernels.allpass import AllpassChain
from ..kernels.lfo import SHAPES, Lfo
from ..params import Param
from ..spec import ProcessSpec
from .modulation import SHAPE_FIELD, STEREO_PHASE, check_choice, rate_param, set_lfo

CONTROL_STEP = 32  # 1.5 kHz control rate at 48 kHz; 10-20% cheaper per block than 16
#: Capture mode: the all-pass chain's step (each with its own feedback; ``a`` still moves every
#: ``CONTROL_STEP``). Parameters move once per block there, so a ramping feedback is
#: interpolated across the block per chain step; half a control step keeps that click-free.
CAPTURE_STEP = CONTROL_STEP // 2


class Phaser(Effect):
    """Phaser with 2-12 all-pass stages, an exponential LFO sweep and feedback.

    Args:
        stages: number of first-order all-pass stages (2 to 12; N stages give N/2 notches).
        shape: LFO shape, one of ``rtfx.kernels.lfo.SHAPES``.
    """

    type_name = "phaser"
    mix_default = 0.5
    #: Outside capture mode a ramping block runs in steps of this many frames, each with one
    #: feedback value (capture mode moves the feedback every ``CAPTURE_STEP`` frames instead).
    ramp_step = 16
    category = "modulation"
    params = (
        rate_param(0.02, 10.0, 0.4),
        Param("low_hz", "Hz", 50.0, 4000.0, 200.0, scale="log", doc="break frequency at the bottom of the sweep"),
        Param("high_hz", "Hz", 200.0, 16000.0, 2000.0, scale="log", doc="break frequency at the top of the sweep"),
        Param("feedback", "", -0.9, 0.9, 0.4, doc="output fed back to the input (sharper notches)"),
        STEREO_PHASE,
    )
    fields = {"stages": {"type": "integer", "minimum": 2, "maximum": 12}, "shape": SHAPE_FIELD}
    example_args = {"stages": 4}

    def __init__(self, stages: int = 4, shape: str = "sine", **values: float) -> None:
        check_choice("phaser", "stages", stages, range(2, 13))
        check_choice("phaser", "shape", shape, SHAPES)
        self.stages, self.shape = stages, shape
        super().__init__(**values)

    def _prepare(self, spec: ProcessSpec) -> None:
        step = CAPTURE_STEP if spec.capture else CONTROL_STEP
        self._chain = AllpassChain(self.stages, spec.channels, spec.blocksize, step, spec.device,
                                   capture=spec.capture)
        steps = self._chain.max_steps
        self._points = -(-(spec.blocksize + CONTROL_STEP - 1) // CONTROL_STEP)  # control steps per block
        f32 = dict(device=spec.device, dtype=spec.dtype)
        self._lfo = Lfo(self.shape, spec.channels, 1, self._points, spec.device, spec.dtype)
        self._coefficients = torch.empty(spec.channels * self._points, **f32)
        self._out = torch.empty(spec.channels, spec.blocksize, **f32)
        # fc = low * exp(u * log(high / low)); pi fc / fs = exp(u * _log_ratio) * _pi_low
        self._log_ratio, self._pi_low = Control(1, spec.device), Control(1, spec.device)
        self._feedback = Control((steps, 1), spec.device)  # per chain step
        self._feedback_key = None  # the one value ``_feedback`` holds (None: a ramp)
        if spec.capture:  # where each chain step ends, its control step and its coefficients
            self._step_ends = CAPTURE_STEP * np.arange(1, steps + 1)
            self._control_steps = Control(steps, spec.device, torch.long)
            self._steps_key = None
            self._chain_a = torch.empty(spec.channels, steps, **f32)
        self._reset()

    def _reset(self) -> None:
        self._chain.reset()
        self._lfo.reset()
        self._offset = 0  # samples since the last multiple of CONTROL_STEP
        self._feedback_end = self.value("feedback")  # at the end of the last block

    def break_range_hz(self) -> tuple[float, float]:
        """The sweep's low and high break frequencies, capped below Nyquist."""
        top = 0.45 * self.spec.samplerate
        return min(self.value("low_hz"), top), min(self.value("high_hz"), top)

    def _update(self) -> None:
        low, high = self.break_range_hz()
        self._log_ratio.set(math.log(high / low))
        self._pi_low.set(math.pi * low / self.spec.samplerate)

    def _control(self, frames: int) -> None:
        set_lfo(self, self._lfo, frames, first=-self._offset, stride=CONTROL_STEP)
        first = -self._chain.offset  # the chain's first step starts with its pending samples
        self._ramp_feedback(first, frames)
        if self.spec.capture:
            self._map_steps(first + self._offset)
        self._chain.plan(frames)
        self._offset = (self._offset + frames) % CONTROL_STEP

    def _map_steps(self, since: int) -> None:
        """Which control step each chain step lies in, the first chain step starting ``since``
        samples after the first control step. Host side (capture mode)."""
        if since != self._steps_key:
            starts = since + CAPTURE_STEP * np.arange(self._control_steps.shape[0])
            self._control_steps.set(np.minimum(starts // CONTROL_STEP, self._points - 1))
            self._steps_key = since

    def _ramp_feedback(self, first: int, frames: int) -> None:
        """Each chain step's feedback. Normal mode: the current value (a ramp runs in short
        blocks, each with its own). Capture mode, where parameters move once per block (a jump
        would click): the value at the step's end (sample ``first + (j + 1) * CAPTURE_STEP`` of
        the block), moving linearly from the last block's value to this one's across the block."""
        start, end = self._feedback_end, self.value("feedback")
        self._feedback_end = end
        if start != end and self.spec.capture:
            self._feedback.set(np.interp(first + self._step_ends, (0, frames), (start, end))[:, None])
            self._feedback_key = None
        elif end != self._feedback_key:
            self._feedback.set(end)
            self._feedback_key = end

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        channels, frames = x.shape
        points = self._points
        a = self._coefficients.view(channels, points)
        torch.mul(self._lfo.render(points).view(channels, points), self._log_ratio.tensor, out=a).exp_()
        a.mul_(self._pi_low.tensor).sub_(math.pi / 4).tan_()
        if self.spec.capture:  # chain steps are shorter than control steps
            a = torch.index_select(a, 1, self._control_steps.tensor, out=self._chain_a)
        return self._chain.process(x, a, self._feedback.tensor, self._out[:, :frames])

    def _preset_fields(self) -> dict:
        return {"stages": self.stages, "shape": self.shape}
