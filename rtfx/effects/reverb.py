"""Reverbs: an algorithmic feedback-delay-network reverb and a convolution reverb on an IR file.

Both default to a mix below 1 (a reverb usually sits on an insert with the dry signal).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..design import biquad_sections
from ..effect import Effect
from ..kernels.fdn import FeedbackDelayNetwork, hadamard, primes_near
from ..kernels.predelay import PreDelay
from ..kernels.iir import SosFilter
from ..params import Param
from ..spec import ProcessSpec
from .convolution import Convolution
from .eq import clamp_below_nyquist

IR_DIR = Path(__file__).resolve().parents[2] / "assets" / "ir"
MAX_PREDELAY_MS = 250.0
PREDELAY = Param("predelay_ms", "ms", 0.0, MAX_PREDELAY_MS, 10.0, ramp_ms=0.0,
                 doc="delay before the reverb starts (a change crossfades)")
PREDELAY_FADE_MS = 50.0
#: Q of the convolution reverb's low and high cut (Butterworth).
CUT_Q = 0.7071
CUTS = ("low_cut_hz", "high_cut_hz")  # the convolution reverb's cut parameters
REVERB_MIX = 0.25
#: Line delays at size 1, in seconds: spread log-evenly over this range, then made prime.
LINE_DELAYS_S = (0.025, 0.06)


def make_predelay(spec: ProcessSpec) -> PreDelay:
    """The pre-delay line of a reverb prepared for ``spec``."""
    rate = spec.samplerate
    return PreDelay(spec.channels, round(MAX_PREDELAY_MS * 1e-3 * rate), spec.blocksize,
                    round(PREDELAY_FADE_MS * 1e-3 * rate), spec.device, spec.capture)


def predelay_samples(effect: Effect) -> int:
    """The effect's pre-delay in whole samples."""
    return round(effect.value("predelay_ms") * 1e-3 * effect.spec.samplerate)


class FDNReverb(Effect):
    """Algorithmic reverb: a feedback delay network of 8 or 16 lines.

    Lines of 25-60 ms times ``size`` (distinct primes in samples at size 1, so their echoes
    rarely coincide; rounded products of those at other sizes) feed each other through an
    orthonormal Hadamard matrix. Each line ends in a one-pole low-pass with gain, set so that
    every line decays by 60 dB in ``decay_s`` at low frequencies and in ``decay_s / 10 **
    damping`` at Nyquist (Jot's absorptive delay lines). Each output channel taps the lines
    with its own Hadamard row (decorrelated outputs); ``width`` blends them towards their mean.
    The wet level is normalised to about unit impulse-response energy at any decay.

    ``size`` is live: its ramp moves the line lengths smoothly (fractional reads, like a tape
    loop changing length: the tail glides in pitch, but never clicks); at rest the lengths
    are whole samples (no interpolation loss).

    Args:
        lines: 8 or 16 (construction field).
        size, decay_s, damping, width: parameters (ramped); predelay_ms: parameter (a change
            crossfades over 50 ms); mix defaults to 0.25.
    """

    type_name = "fdn_reverb"
    mix_default = REVERB_MIX
    category = "reverb"
    params = (
        Param("size", "", 0.25, 2.0, 1.0, scale="log", ramp_ms=400.0, doc="room size (scales the line lengths)"),
        Param("decay_s", "s", 0.2, 20.0, 2.0, scale="log", ramp_ms=100.0, doc="RT60 at low frequencies"),
        Param("damping", "", 0.0, 1.0, 0.5, doc="0: highs decay like lows; 1: highs decay 10x faster"),
        PREDELAY,
        Param("width", "", 0.0, 1.0, 1.0, doc="stereo width of the tail: 0 mono, 1 fully decorrelated"),
    )
    fields = {"lines": {"type": "integer", "enum": [8, 16]}}
    example_args = {}

    def __init__(self, lines: int = 8, **values: float) -> None:
        if lines not in (8, 16):
            raise ValueError(f"{self.type_name}: lines = {lines!r}; choose 8 or 16")
        self.lines = lines
        super().__init__(**values)

    @property
    def tail_seconds(self) -> float:
        """The pre-delay and the decay time (RT60)."""
        return self.get("predelay_ms") * 1e-3 + self.get("decay_s")

    def _prepare(self, spec: ProcessSpec) -> None:
        rate, n = spec.samplerate, self.lines
        low, high = LINE_DELAYS_S
        self._base = primes_near(np.geomspace(low, high, n) * rate).astype(float)
        h = hadamard(n)
        rows = np.arange(spec.channels)
        inputs = h[(n - 1 - rows) % n].T / np.sqrt(spec.channels)  # (lines, channels)
        self._taps = h[(rows + 1) % n] * np.sqrt(n)  # (channels, lines): a row of +-1 per output
        size = self._smoothed["size"].param
        self._fdn = FeedbackDelayNetwork(h, inputs, self._base.max() * size.maximum, spec.blocksize, spec.device,
                                         self._base.min() * size.minimum, spec.capture)
        self._predelay = make_predelay(spec)

    def _update(self) -> None:
        rate = self.spec.samplerate
        size = self.value("size")
        exact = self._base * size
        delays = np.round(exact) if size == self.get("size") else exact  # whole samples at rest
        self._fdn.set_delays(delays.tolist())
        self._predelay.set_delay(predelay_samples(self))
        # Per-line gains: 60 dB per decay time at DC, per decay / 10**damping at Nyquist.
        decay = self.value("decay_s")
        dc = 10 ** (-3 * delays / (rate * decay))
        nyquist = 10 ** (-3 * delays / (rate * decay * 10 ** -self.value("damping")))
        pole = (dc - nyquist) / (dc + nyquist)  # one-pole with gain dc at 0 Hz, nyquist at fs/2
        self._fdn.set_filters(dc * (1 - pole), pole)
        # Unit impulse-response energy: an impulse leaves the lines with gain g, then keeps g^2
        # of its energy per round, g^2 / (1 - g^2) in all (without damping).
        power = np.mean(dc**2)
        level = np.sqrt((1 - power) / power)
        mean = self._taps.mean(axis=0)
        width = self.value("width")
        self._fdn.set_output(level * (mean + width * (self._taps - mean)))

    def _reset(self) -> None:
        self._fdn.reset()
        self._predelay.reset()
        self._update()  # the delays as they are now, not moving from before the reset

    def _control(self, frames: int) -> None:
        self._predelay.before_block(frames)
        self._fdn.before_block(frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        return self._fdn.run(self._predelay.run(x))

    def _preset_fields(self) -> dict:
        return {"lines": self.lines} if self.lines != 8 else {}


class ConvolutionReverb(Convolution):
    """Convolution reverb: an impulse response (file or taps) with pre-delay and tone cuts.

    The IR is normalised to unit energy by default. Each stream channel uses the IR channel of
    the same index (cycling: a stereo IR on a mono stream uses its left channel).
    ``low_cut_hz``/``high_cut_hz`` are 12 dB/octave Butterworth filters on the wet signal
    (at 20 Hz and 20 kHz they leave the audio band alone).

    Args:
        taps, file, normalize: as for ``Convolution``.
        gain_db, low_cut_hz, high_cut_hz: parameters (ramped); predelay_ms: parameter (a
            change crossfades over 50 ms); mix defaults to 0.25.
    """

    type_name = "convolution_reverb"
    mix_default = REVERB_MIX
    category = "reverb"
    params = Convolution.params + (
        PREDELAY,
        Param("low_cut_hz", "Hz", 20.0, 1000.0, 20.0, scale="log", doc="high-pass on the reverb"),
        Param("high_cut_hz", "Hz", 1000.0, 20000.0, 20000.0, scale="log", doc="low-pass on the reverb"),
    )
    example_args = {"file": str(IR_DIR / "room.wav")}

    def __init__(self, taps=None, file: str | Path | None = None, normalize: bool = True, **values: float) -> None:
        super().__init__(taps=taps, file=file, normalize=normalize, **values)

    ramp_values_step = 4  # the cuts' coefficients move every 4 frames (``_control``)

    @property
    def tail_seconds(self) -> float:
        return super().tail_seconds + self.get("predelay_ms") * 1e-3

    def impulse_response(self, samplerate: float) -> np.ndarray:
        """The IR at ``samplerate`` ``(channels, taps)``; once prepared, one row per stream
        channel."""
        taps = super().impulse_response(samplerate)
        return taps if self.spec is None else taps[np.arange(self.spec.channels) % taps.shape[0]]

    def cuts(self) -> np.ndarray:
        """The two sections of the low and high cut at their current values."""
        return self.cut_steps({name: np.array([self.value(name)]) for name in CUTS})[0]

    def cut_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The cuts for S sets of parameter values (``(S,)`` arrays): ``(S, 2, 6)``."""
        rate = self.spec.samplerate
        return np.concatenate([
            biquad_sections("highpass", clamp_below_nyquist(values["low_cut_hz"], rate), rate, CUT_Q),
            biquad_sections("lowpass", clamp_below_nyquist(values["high_cut_hz"], rate), rate, CUT_Q),
        ], axis=1)

    def _prepare(self, spec: ProcessSpec) -> None:
        super()._prepare(spec)
        self._cut = SosFilter(self.cuts(), spec.channels, spec.blocksize, spec.device)
        self._cut_at = [self.value(name) for name in CUTS]  # the cut values the filter holds
        self._predelay = make_predelay(spec)
        self._cut_steps = None  # a ramping block's cut designs, ``(S, 2, 6)`` (normal mode)

    def _update(self) -> None:
        self._predelay.set_delay(predelay_samples(self))
        if self.ramp_values is not None:  # the cuts move in ``_control``
            return
        self._cut_at = [self.value(name) for name in CUTS]
        sections = self.cuts()
        if not np.array_equal(sections, self._cut.sos):
            self._cut.set_sos(sections)

    def _control(self, frames: int) -> None:
        super()._control(frames)
        self._predelay.before_block(frames)
        self._cut_steps = None
        values = self.ramp_values
        if values is not None and any((values[name] != at).any() for name, at in zip(CUTS, self._cut_at)):
            # The cuts ramp in steps of ``ramp_values_step`` (also when the last step of a ramp
            # is the block's first: its values then hold still, but differ from the filter's).
            self._cut_at = [values[name][-1] for name in CUTS]
            steps, step = self.cut_steps(values), self.ramp_values_step
            if not self.spec.capture:
                self._cut_steps = steps  # filtered step by step in ``_process``
                return
            if self._cut.can_ramp_block(frames, step):
                self._cut.ramp_block(steps, step)  # composed into the block's one matrix
                return
            self._cut.set_sos(steps[-1])  # a long capture block: the cuts move once
        self._cut.before_block(frames)

    def _reset(self) -> None:
        super()._reset()
        self._cut.reset()
        self._predelay.reset()
        self._update()  # the pre-delay as it is now, not moving from before the reset

    def _preset_fields(self) -> dict:
        fields = super()._preset_fields()
        fields.pop("normalize", None)  # on by default here
        return fields if self.normalize else {**fields, "normalize": False}

    def _blends(self, frames: int) -> bool:
        return self._cut.one_kernel(frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        predelayed, blend = self._predelay.run(x), self.blend_ramp(x.shape[-1])
        if blend is not None:  # the gain, the cuts and the blend: one kernel
            gains = self._gain.factors(x.shape[-1])
            return self._cut.process_one(self._kernel.process(predelayed), gain_in=gains, blend=(x, blend))
        wet = super()._process(predelayed)
        if self._cut_steps is not None:
            return self._cut.process_ramp(wet, self._cut_steps, self.ramp_values_step)
        return self._cut.process(wet)
