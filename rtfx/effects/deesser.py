"""Split-band de-esser: turns down the band above ``frequency_hz`` while it is too loud."""
from __future__ import annotations

import torch

from ..controls import Control
from ..design import design_biquad
from ..effect import Effect
from ..kernels import fused, fused_dynamics
from ..kernels.dynamics import AttackRelease, DbGain, LinkedLevel
from ..kernels.envelope import F64, Views
from ..kernels.iir import SosFilter
from ..params import Param
from ..spec import ProcessSpec


class DeEsser(Effect):
    """Split-band de-esser for vocals (stereo-linked).

    The band is what a 2nd-order Butterworth low-pass at ``frequency_hz`` leaves out:
    ``high = x - low``. Its peak level above ``threshold_db`` is taken off (an infinite
    ratio), by at most ``range_db``, smoothed with ``attack_ms``/``release_ms``
    (``AttackRelease``), and applied to that band only: ``out = low + gain * high`` (a high
    shelf whose gain follows the sibilance). At unity gain the output is ``x`` exactly, so the
    voice below the band and quiet passages are untouched. Near the crossover the low-pass's
    phase makes the sum dip up to ~3 dB below ``range_db`` (an octave or so above
    ``frequency_hz``). ``frequency_hz`` above 0.45 x the sample rate is held there.
    """

    type_name = "deesser"
    category = "dynamics"
    params = (
        Param("frequency_hz", "Hz", 2000.0, 16000.0, 5000.0, scale="log", doc="lower edge of the sibilance band"),
        Param("threshold_db", "dB", -60.0, 0.0, -30.0, doc="band level above which it is turned down"),
        Param("range_db", "dB", 0.0, 24.0, 12.0, doc="the most the band is turned down"),
        Param("attack_ms", "ms", 0.1, 20.0, 1.0, scale="log", doc="time to 63% of a rise in reduction"),
        Param("release_ms", "ms", 5.0, 500.0, 60.0, scale="log", doc="time to 63% of a fall in reduction"),
    )

    def _prepare(self, spec: ProcessSpec) -> None:
        frames, device = spec.blocksize, spec.device
        self._band = SosFilter(self._sections(), spec.channels, frames, device)
        self._frequency = self.value("frequency_hz")
        self._level = LinkedLevel(spec.channels, frames, device)
        # The band's reduction in dB is clamp(level - threshold, 0, range).
        self._threshold, self._range = Control(1, device, F64), Control(1, device, F64)
        self._zero = torch.zeros(1, dtype=F64, device=device)
        self._reduction = torch.empty(frames, dtype=F64, device=device)
        self._smoother = AttackRelease(frames, device)
        if spec.capture:
            self._smoother.fix_chunks(self._smoothed["attack_ms"].param.minimum * 1e-3, spec.samplerate)
        self._gain = DbGain(spec.channels, frames, device)
        self._fused = fused.available(device)
        self._high = torch.empty(spec.channels, frames, device=device)
        self._buffers = Views(lambda n: (self._high[:, :n], self._reduction[:n]))
        self._times = None

    def _sections(self):
        rate = self.spec.samplerate
        return design_biquad("lowpass", min(self.value("frequency_hz"), 0.45 * rate), rate, 0.7071)

    def _update(self) -> None:
        times = (self.value("attack_ms") * 1e-3, self.value("release_ms") * 1e-3)
        if times != self._times:
            self._smoother.set_times(*times, self.spec.samplerate)
            self._times = times
        self._threshold.set(self.value("threshold_db"))
        self._range.set(self.value("range_db"))

    def _control(self, frames: int) -> None:
        if self.value("frequency_hz") != self._frequency:
            self._frequency = self.value("frequency_hz")
            self._band.set_sos(self._sections())
        self._band.before_block(frames)

    def _reset(self) -> None:
        self._band.reset()
        self._smoother.reset()

    @property
    def gain_reduction_db(self) -> torch.Tensor:
        """Reduction of the band in dB at the end of the last block, ``(1,)`` float64."""
        return self._smoother.state

    def _blends(self, frames: int) -> bool:
        return self._fused

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        high, reduction = self._buffers(x.shape[-1])
        low = self._band.process(x)
        if self._fused:  # level, curve, smoothing and the band's gain in one kernel
            return fused_dynamics.deesser(self, x, low, self._gain.out[:, : x.shape[-1]], self.blend_ramp(x.shape[-1]))
        torch.sub(x, low, out=high)
        torch.sub(self._level.process(high), self._threshold.tensor, out=reduction)
        reduction.clamp_(self._zero, self._range.tensor)
        return self._gain.process(high, self._smoother.process(reduction)).add_(low)
