"""Feed-forward compressor with a soft knee, level detection in dB and a sidechain high-pass."""
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

#: The sidechain high-pass is off at this frequency (the bottom of its range).
HPF_OFF_HZ = 20.0


class SoftKnee:
    """Gain reduction in dB (>= 0) of the soft-knee static curve (Giannoulis et al. 2012).

    With ``d = level - threshold`` and knee width ``W``, the output level is ``level`` below
    the knee (``d < -W/2``), ``threshold + d / ratio`` above it (``d > W/2``) and
    ``level + (1/ratio - 1) (d + W/2)^2 / (2W)`` inside. The reduction ``level - output`` is

        (1 - 1/ratio) * (clamp(d + W/2, 0, W)^2 / (2W) + max(d - W/2, 0))

    which covers all three regions at once (a hard knee is the limit of a tiny ``W``). The
    host sets the curve (``set``); its numbers reach the kernels as ``Control``s.
    """

    def __init__(self, device) -> None:
        self._knee_start, self._width, self._slope, self._knee_slope = (Control(1, device, F64) for _ in range(4))
        self._zero = torch.zeros(1, dtype=F64, device=device)

    def set(self, threshold_db: float, ratio: float, knee_db: float) -> None:
        """Host side: the curve of the next blocks."""
        width = max(knee_db, 1e-6)
        slope = 1.0 - 1.0 / ratio
        self._knee_start.set(threshold_db - width / 2)
        self._width.set(width)
        self._slope.set(slope)
        self._knee_slope.set(slope / (2 * width))

    def reduction(self, level_db: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        """``level_db`` ``(frames,)`` float64; ``out`` and ``scratch``: buffers shaped like it.
        Returns ``out``."""
        inside = torch.sub(level_db, self._knee_start.tensor, out=scratch)  # d + W/2
        above = torch.sub(inside, self._width.tensor, out=out).clamp_(min=0.0)  # max(d - W/2, 0)
        inside.clamp_(self._zero, self._width.tensor).square_()
        return above.mul_(self._slope.tensor).addcmul_(inside, self._knee_slope.tensor)


class Compressor(Effect):
    """Feed-forward compressor (stereo-linked peak detection; one gain for all channels).

    Per sample: level ``20 log10 max_c |sidechain|`` -> soft-knee gain reduction ->
    attack/release smoothing in dB (``AttackRelease``: a step in gain reduction reaches 63%
    in ``attack_ms`` going up, ``release_ms`` going down) -> ``makeup_db - reduction``.

    ``gain_reduction_db`` is a ``(1,)`` tensor on the device holding the reduction at the end
    of the last block (for meters; read it off the audio thread).

    With ``spec.capture`` the sidechain high-pass always runs and the detector picks its
    output or the input on the device. On a CUDA device with Triton, level, curve, smoothing
    and gain are one kernel (``fused_dynamics.compressor``).
    """

    type_name = "compressor"
    category = "dynamics"
    params = (
        Param("threshold_db", "dB", -60.0, 0.0, -20.0, doc="level above which the gain is reduced"),
        Param("ratio", "", 1.0, 20.0, 4.0, scale="log", doc="input dB change per output dB above the threshold"),
        Param("knee_db", "dB", 0.0, 24.0, 6.0, doc="width of the soft knee around the threshold"),
        Param("attack_ms", "ms", 0.1, 200.0, 10.0, scale="log", doc="time to 63% of a rise in gain reduction"),
        Param("release_ms", "ms", 5.0, 2000.0, 100.0, scale="log", doc="time to 63% of a fall in gain reduction"),
        Param("makeup_db", "dB", 0.0, 24.0, 0.0, doc="gain added after compression"),
        Param("sidechain_hpf_hz", "Hz", HPF_OFF_HZ, 1000.0, HPF_OFF_HZ, scale="log",
              doc="high-pass on the detector (20 Hz: off), so bass does not pump the gain"),
    )

    def _prepare(self, spec: ProcessSpec) -> None:
        frames, device = spec.blocksize, spec.device
        self._level = LinkedLevel(spec.channels, frames, device)
        self._curve = SoftKnee(device)
        self._reduction = torch.empty(frames, dtype=F64, device=device)
        self._scratch = torch.empty(frames, dtype=F64, device=device)
        self._buffers = Views(lambda n: (self._reduction[:n], self._scratch[:n]))
        self._smoother = AttackRelease(frames, device)
        if spec.capture:
            self._smoother.fix_chunks(self._smoothed["attack_ms"].param.minimum * 1e-3, spec.samplerate)
        self._gain = DbGain(spec.channels, frames, device, makeup=True)
        self._fused = fused.available(device)
        self._hpf = SosFilter(self._hpf_sections(), spec.channels, frames, device)
        self._hpf_hz = self.value("sidechain_hpf_hz")
        self._hpf_on = Control(1, device, torch.bool)
        self._hpf_on.set(self._hpf_hz > HPF_OFF_HZ)
        self._detector = torch.empty(spec.channels, frames, device=device)  # capture: the chosen input
        self._times = None
        self._makeup_db = self.value("makeup_db")

    def _hpf_sections(self):
        return design_biquad("highpass", self.value("sidechain_hpf_hz"), self.spec.samplerate, 0.7071)

    def _update(self) -> None:
        times = (self.value("attack_ms") * 1e-3, self.value("release_ms") * 1e-3)
        if times != self._times:
            self._smoother.set_times(*times, self.spec.samplerate)
            self._times = times
        self._curve.set(self.value("threshold_db"), self.value("ratio"), self.value("knee_db"))

    def _control(self, frames: int) -> None:
        if self.value("sidechain_hpf_hz") != self._hpf_hz:
            self._hpf_hz = self.value("sidechain_hpf_hz")
            self._hpf.set_sos(self._hpf_sections())
            self._hpf_on.set(self._hpf_hz > HPF_OFF_HZ)
        if self.spec.capture or self._hpf_hz > HPF_OFF_HZ:
            self._hpf.before_block(frames)
        start, self._makeup_db = self._makeup_db, self.value("makeup_db")
        self._gain.move_makeup(start, self._makeup_db, frames)

    def _reset(self) -> None:
        self._makeup_db = self.value("makeup_db")
        self._smoother.reset()
        self._hpf.reset()

    @property
    def gain_reduction_db(self) -> torch.Tensor:
        """Gain reduction in dB at the end of the last block, ``(1,)`` float64."""
        return self._smoother.state

    def _sidechain(self, x: torch.Tensor) -> torch.Tensor:
        """The detector's input: ``x``, high-passed unless the filter is off."""
        if not self.spec.capture:
            return self._hpf.process(x) if self._hpf_hz > HPF_OFF_HZ else x
        return torch.where(self._hpf_on.tensor, self._hpf.process(x), x, out=self._detector[:, : x.shape[-1]])

    def _blends(self, frames: int) -> bool:
        return self._fused

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        if self._fused:  # in capture mode the kernel picks the detector's input itself
            capture = self.spec.capture
            side = self._hpf.process(x) if capture else self._sidechain(x)
            return fused_dynamics.compressor(self, x, side, self._hpf_on.tensor if capture else None,
                                             self._gain.out[:, :frames], self.blend_ramp(frames))
        reduction = self._curve.reduction(self._level.process(self._sidechain(x)), *self._buffers(frames))
        return self._gain.process(x, self._smoother.process(reduction))
