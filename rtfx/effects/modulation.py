"""LFO effects: chorus, flanger and vibrato (modulated delays), and tremolo.

A modulated delay reads its delay line at a delay that moves with the LFO ``u(t)`` in [0, 1]::

    delay(t) = m + (delay_ms + depth_ms * u(t)) * fs / 1000      samples

(``m`` = the interpolator's reach, 1 or 2 samples, so that every read touches only samples
already written). Reads are fractional (``rtfx.kernels.delayline``: linear, Lagrange or
Hermite). The flanger feeds its delayed signal back into the line::

    line[n] = x[n] + feedback * wet[n],      wet[n] = line(n - delay(n))

computed in sub-blocks no longer than its shortest delay (in capture mode, always the
shortest that ``delay_ms``'s range allows, so that every block runs the same kernels).
``delay_ms`` and ``depth_ms`` move linearly per sample between the values of consecutive
steps (blocks, in capture mode), so a change bends the pitch a little instead of jumping the
read position; so does, in capture mode, each channel's LFO phase offset (``set_lfo``). The
host writes where each ramp starts and its slope into ``Control``s.
"""
from __future__ import annotations

import math

import torch

from ..controls import Control, LinearRamp
from ..effect import Effect
from ..kernels.delayline import INTERPOLATIONS, DelayLine
from ..kernels.lfo import SHAPES, Lfo
from ..params import Param
from ..spec import ProcessSpec

SHAPE_FIELD = {"type": "string", "enum": list(SHAPES)}
INTERPOLATION_FIELD = {"type": "string", "enum": list(INTERPOLATIONS)}
STEREO_PHASE = Param("stereo_phase_deg", "deg", 0.0, 180.0, 90.0,
                     doc="LFO phase offset of each channel from the one before")


def rate_param(minimum: float, maximum: float, default: float) -> Param:
    return Param("rate_hz", "Hz", minimum, maximum, default, scale="log", doc="LFO rate")


# Delay and depth ramp over 200 ms: moving the read position bends the pitch by the ramp's
# slope, and 200 ms keeps a jump across the whole range to a small bend (no click).
def depth_ms_param(maximum: float, default: float) -> Param:
    return Param("depth_ms", "ms", 0.0, maximum, default, ramp_ms=200.0, doc="LFO sweep of the delay")


def delay_ms_param(minimum: float, maximum: float, default: float) -> Param:
    return Param("delay_ms", "ms", minimum, maximum, default, scale="log", ramp_ms=200.0,
                 doc="shortest delay (the LFO adds up to depth_ms)")


def set_lfo(effect: Effect, lfo: Lfo, frames: int, first: int = 0, stride: int = 1) -> None:
    """Set ``effect``'s LFO for its next block of ``frames`` (from ``rate_hz`` and
    ``stereo_phase_deg``) and advance its phase. The stereo offset glides across the block
    (parameters move once per block or ``ramp_step`` sub-block: a jump would click)."""
    rate = effect.value("rate_hz") / effect.spec.samplerate
    lfo.set(rate, effect.value("stereo_phase_deg") / 360.0, first, stride, frames)
    lfo.advance(frames, rate)


def check_choice(owner: str, name: str, value, choices) -> None:
    """Raise ``ValueError`` naming ``owner`` and ``name`` unless ``value`` is one of ``choices``
    (of the same type: ``2.0`` is not a voice count)."""
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        raise ValueError(f"{owner}: {name} = {value!r}; choose one of {', '.join(map(str, choices))}")


class ModulatedDelay(Effect):
    """Base of chorus, flanger and vibrato: a delay line read at an LFO-driven delay.

    Args:
        shape: LFO shape, one of ``rtfx.kernels.lfo.SHAPES``.
        interpolation: fractional-delay interpolator, one of ``INTERPOLATIONS``.
    """

    fields = {"shape": SHAPE_FIELD, "interpolation": INTERPOLATION_FIELD}
    #: True: the wet signal is fed back into the line (``feedback`` parameter).
    feedback_loop = False
    voices = 1

    def __init__(self, shape: str = "sine", interpolation: str = "hermite", **values: float) -> None:
        check_choice(self.type_name, "shape", shape, SHAPES)
        check_choice(self.type_name, "interpolation", interpolation, INTERPOLATIONS)
        self.shape, self.interpolation = shape, interpolation
        super().__init__(**values)

    def delay_ms(self) -> float:
        """The shortest delay (LFO at 0), in ms, not counting the interpolator's reach."""
        return self.value("delay_ms")

    def _prepare(self, spec: ProcessSpec) -> None:
        depth = next(p for p in self.params if p.name == "depth_ms").maximum
        delay = max((p.maximum for p in self.params if p.name == "delay_ms"), default=0.0)
        longest = (delay + depth) * 1e-3 * spec.samplerate + 2
        channels, block = spec.channels, spec.blocksize
        self._line = DelayLine(channels, longest, block, spec.device, self.interpolation, self.voices,
                               ring=spec.capture)
        self._lfo = Lfo(self.shape, channels, self.voices, block, spec.device)
        f64 = dict(device=spec.device, dtype=torch.float64)
        f32 = dict(device=spec.device, dtype=spec.dtype)
        self._steps_from_one = torch.arange(1, block + 1, **f64)
        # Rows -width and start + i - delay, per sample i: ramp_start + ramp_slope * (i + 1).
        self._ramp_start = Control((2, 1), spec.device, torch.float64)
        self._ramp_slope = Control((2, 1), spec.device, torch.float64)
        self._ramps = torch.empty(2, block, **f64)
        self._feedback_ramp = LinearRamp(block, spec.device) if self.feedback_loop else None
        self._positions = torch.empty(channels * self.voices * block, **f64)
        self._out = torch.empty(channels, block, **f32)
        self._loop_in = torch.empty(channels * block, **f32)  # viewed (channels, L): contiguous
        self._views: dict[int, tuple] = {}  # per block length, made on first use
        self._loop_views: dict[tuple[int, int], tuple] = {}  # per (block, sub-block) length
        # Capture mode: the sub-block the shortest delay_ms allows (the delay may move anytime).
        shortest = min((p.minimum for p in self.params if p.name == "delay_ms"), default=0.0)
        self._capture_step = self._loop_step(self._line.min_delay + shortest * 1e-3 * spec.samplerate)
        self._reset()

    def _reset(self) -> None:
        self._line.reset()
        self._lfo.reset()
        self._applied = self._delay_and_width()
        self._feedback = self.value("feedback") if self.feedback_loop else 0.0

    def _delay_and_width(self) -> tuple[float, float]:
        """The shortest delay and the LFO's sweep, in samples."""
        per_ms = 1e-3 * self.spec.samplerate
        return self._line.min_delay + self.delay_ms() * per_ms, self.value("depth_ms") * per_ms

    def _loop_step(self, shortest: float) -> int:
        """The longest feedback sub-block for delays of at least ``shortest`` samples."""
        return max(1, math.floor(shortest) - self._line.min_delay)

    def _block_views(self, frames: int) -> tuple:
        """Views for a block of ``frames``: positions ``(channels, voices, frames)``, the same
        ``(channels, voices * frames)``, sample steps from one ``(frames,)``, the ramps
        ``(2, frames)``, output ``(channels, frames)``."""
        views = self._views.get(frames)
        if views is None:
            channels = self._out.shape[0]
            positions = self._positions[: channels * self.voices * frames]
            views = self._views[frames] = (
                positions.view(channels, self.voices, frames), positions.view(channels, -1),
                self._steps_from_one[:frames], self._ramps[:, :frames], self._out[:, :frames])
        return views

    def _control(self, frames: int) -> None:
        self._line.advance(frames)
        (delay0, width0), (delay1, width1) = self._applied, self._delay_and_width()
        self._applied = (delay1, width1)
        first, slope = self._ramp_start.values, self._ramp_slope.values
        first[0, 0], first[1, 0] = -width0, self._line.start - delay0 - 1
        slope[0, 0], slope[1, 0] = (width0 - width1) / frames, 1 + (delay0 - delay1) / frames
        self._ramp_start.commit()
        self._ramp_slope.commit()
        set_lfo(self, self._lfo, frames)
        if self.feedback_loop:
            start, self._feedback = self._feedback, self.value("feedback")
            self._feedback_ramp.set(start, self._feedback, frames)
            self._step = self._capture_step if self.spec.capture else self._loop_step(min(delay0, delay1))

    def _read_positions(self, frames: int) -> torch.Tensor:
        """Buffer positions ``start + i - delay(i)``, ``(channels, voices * frames)`` float64."""
        positions, flat, steps_from_one, ramps, _ = self._block_views(frames)
        torch.addcmul(self._ramp_start.tensor, steps_from_one, self._ramp_slope.tensor, out=ramps)
        torch.addcmul(ramps[1], self._lfo.render(frames), ramps[0], out=positions)
        return flat

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        out = self._block_views(frames)[-1]
        positions = self._read_positions(frames)
        if self.feedback_loop:
            return self._process_loop(x, positions, out)
        self._line.write_at(x)
        return self._line.read(positions, out)

    def _process_loop(self, x: torch.Tensor, positions: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Feedback: read, then write input plus feedback, in sub-blocks shorter than the delay."""
        frames = x.shape[-1]
        index, weights = self._line.locate(positions)  # one voice
        step = self._step
        pieces = self._loop_views.get((frames, step)) or self._make_loop_views(frames, step, index, weights, out)
        feedback = self._feedback_ramp.tensor  # per sample: a stepped gain would zip
        for begin, end, piece_index, piece_weights, piece_out, loop_in in pieces:
            wet = self._line.gather(piece_index, piece_weights, piece_out)
            self._line.write_at(torch.mul(wet, feedback[begin:end], out=loop_in).add_(x[:, begin:end]), begin)
        return out

    def _make_loop_views(self, frames: int, step: int, index, weights, out) -> tuple:
        """Per sub-block: bounds and views of the taps, weights, output and loop input (the
        same buffers every block of this length)."""
        channels = out.shape[0]
        pieces = tuple(
            (begin, end, index[:, begin:end], weights[:, begin:end], out[:, begin:end],
             self._loop_in[: channels * (end - begin)].view(channels, end - begin))
            for begin, end in ((b, min(b + step, frames)) for b in range(0, frames, step)))
        self._loop_views[(frames, step)] = pieces
        return pieces

    def _preset_fields(self) -> dict:
        fields = {"shape": self.shape, "interpolation": self.interpolation}
        if self.voices != 1:
            fields["voices"] = self.voices
        return fields


class Chorus(ModulatedDelay):
    """Chorus: ``voices`` copies at 5-30 ms delays, each swept by the LFO a fraction of a
    cycle apart, averaged (mix 0.5 by default).

    Args:
        voices: 1 to 4.
    """

    type_name = "chorus"
    mix_default = 0.5
    category = "modulation"
    params = (
        rate_param(0.05, 5.0, 0.8),
        depth_ms_param(10.0, 3.0),
        delay_ms_param(5.0, 30.0, 10.0),
        STEREO_PHASE,
    )
    fields = {**ModulatedDelay.fields, "voices": {"type": "integer", "minimum": 1, "maximum": 4}}
    example_args = {"voices": 2}

    def __init__(self, voices: int = 2, shape: str = "sine", interpolation: str = "hermite", **values: float) -> None:
        check_choice("chorus", "voices", voices, (1, 2, 3, 4))
        self.voices = voices
        super().__init__(shape, interpolation, **values)


class Flanger(ModulatedDelay):
    """Flanger: a short swept delay (1-10 ms) with feedback, mixed with the dry signal
    (mix 0.5 by default) to sweep a comb of notches."""

    type_name = "flanger"
    mix_default = 0.5
    category = "modulation"
    feedback_loop = True
    params = (
        rate_param(0.02, 5.0, 0.25),
        depth_ms_param(8.0, 2.0),
        delay_ms_param(1.0, 10.0, 1.0),
        Param("feedback", "", -0.95, 0.95, 0.5, doc="delayed signal fed back (negative: odd harmonics)"),
        STEREO_PHASE,
    )
    example_args = {}

    def __init__(self, shape: str = "triangle", interpolation: str = "hermite", **values: float) -> None:
        super().__init__(shape, interpolation, **values)


class Vibrato(ModulatedDelay):
    """Vibrato: pitch modulation by a swept delay, wet only (mix 1 by default)."""

    type_name = "vibrato"
    category = "modulation"
    params = (
        rate_param(0.1, 12.0, 5.0),
        depth_ms_param(5.0, 1.0),
        Param("stereo_phase_deg", "deg", 0.0, 180.0, 0.0, doc="LFO phase offset of each channel"),
    )
    example_args = {}

    def delay_ms(self) -> float:
        return 0.0


class Tremolo(Effect):
    """Tremolo: the gain dips by ``depth * u(t)`` with the LFO ``u`` in [0, 1].

    Args:
        shape: LFO shape, one of ``rtfx.kernels.lfo.SHAPES``.
    """

    type_name = "tremolo"
    category = "modulation"
    params = (
        rate_param(0.1, 20.0, 4.0),
        Param("depth", "", 0.0, 1.0, 0.5, doc="gain dip at the LFO's peak (1: to silence)"),
        Param("stereo_phase_deg", "deg", 0.0, 180.0, 0.0, doc="LFO phase offset of each channel (180: auto-pan)"),
    )
    fields = {"shape": SHAPE_FIELD}
    example_args = {}

    def __init__(self, shape: str = "sine", **values: float) -> None:
        check_choice("tremolo", "shape", shape, SHAPES)
        self.shape = shape
        super().__init__(**values)

    def _prepare(self, spec: ProcessSpec) -> None:
        self._depth_ramp = LinearRamp(spec.blocksize, spec.device)
        self._lfo = Lfo(self.shape, spec.channels, 1, spec.blocksize, spec.device, spec.dtype)
        self._gain = torch.empty(spec.channels, spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._out = torch.empty_like(self._gain)
        self._reset()

    def _reset(self) -> None:
        self._lfo.reset()
        self._depth = self.value("depth")

    def _control(self, frames: int) -> None:
        set_lfo(self, self._lfo, frames)
        start, self._depth = self._depth, self.value("depth")
        self._depth_ramp.set(start, self._depth, frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        channels, frames = x.shape
        lfo = self._lfo.render(frames).view(channels, frames)
        gain = torch.mul(lfo, self._depth_ramp.tensor[:frames], out=self._gain[:, :frames]).neg_().add_(1.0)
        return torch.mul(x, gain, out=self._out[:, :frames])

    def _preset_fields(self) -> dict:
        return {"shape": self.shape}
