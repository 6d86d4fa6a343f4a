"""Noise gate with hysteresis, hold, attack, release and a floor (range)."""
from __future__ import annotations

import torch

from ..controls import Control
from ..effect import Effect
from ..kernels import fused, fused_dynamics
from ..kernels.dynamics import DbGain, LinkedLevel
from ..kernels.envelope import F64, DecayingMax, LatestIndex, OnePole, Views, coefficient
from ..params import Param
from ..spec import ProcessSpec
from .gain import db_to_linear

#: Release of the gate's level detector (a peak follower; its attack is instant), in ms.
DETECTOR_RELEASE_MS = 10.0


class Gate(Effect):
    """Noise gate (stereo-linked).

    The level is a peak follower of ``max_c |x|`` (instant attack, 10 ms release). The gate
    opens when it rises above ``threshold_db`` and closes when it falls below
    ``threshold_db - hysteresis_db``; in between it keeps its state. After closing it stays
    open for ``hold_ms`` more. Its gain (in dB) then moves between 0 dB (open) and
    ``range_db`` (closed): 63% of the way in ``attack_ms`` when opening, ``release_ms`` when
    closing.

    All of it is exact block scans: the hysteresis state is "the latest sample above the
    open threshold is later than the latest below the close threshold" (two running maxima
    of sample indices, ``LatestIndex``), the hold compares each sample's index with the
    latest open one, and the gain is a one-pole whose coefficient is chosen per sample
    (``OnePole``). Thresholds, hold and coefficients reach the kernels as ``Control``s. On a
    CUDA device with Triton the whole block is one kernel (``fused_dynamics.gate``).
    """

    type_name = "gate"
    category = "dynamics"
    params = (
        Param("threshold_db", "dB", -90.0, 0.0, -50.0, doc="level that opens the gate"),
        Param("hysteresis_db", "dB", 0.0, 24.0, 6.0, doc="the gate closes this far below the threshold"),
        Param("attack_ms", "ms", 0.1, 100.0, 1.0, scale="log", doc="time to 63% of the opening"),
        Param("hold_ms", "ms", 0.0, 500.0, 20.0, doc="time the gate stays open after closing"),
        Param("release_ms", "ms", 5.0, 2000.0, 100.0, scale="log", doc="time to 63% of the closing"),
        Param("range_db", "dB", -90.0, 0.0, -60.0, doc="gain while closed"),
    )

    def _prepare(self, spec: ProcessSpec) -> None:
        frames, device = spec.blocksize, spec.device
        self._level = LinkedLevel(spec.channels, frames, device)
        self._follower = DecayingMax(frames, device)
        self._follower.set_decay(coefficient(DETECTOR_RELEASE_MS * 1e-3, spec.samplerate))
        self._last_above = LatestIndex(frames, device)
        self._last_below = LatestIndex(frames, device)
        self._last_open = LatestIndex(frames, device)
        self._smoother = OnePole(frames, device)
        if spec.capture:  # the shortest attack has the smallest coefficient
            self._smoother.fix_chunks(coefficient(self._smoothed["attack_ms"].param.minimum * 1e-3, spec.samplerate))
        self._gain = DbGain(spec.channels, frames, device)
        self._fused = fused.available(device)
        # Linear levels that open and close the gate, and the hold in frames.
        self._open_level, self._close_level = Control(1, device, F64), Control(1, device, F64)
        self._hold_frames = Control(1, device, torch.int64)
        # Per-sample choices, open or closed: [attack, release] coefficients and the drive
        # (1 - c) * target of the gain reduction in dB: [0, (1 - release) * -range].
        self._coefs = Control((2, 1), device, F64)
        self._drives = Control((2, 1), device, F64)
        index = self._last_open.index
        elapsed = torch.empty_like(index)
        above, below = (torch.empty(frames, dtype=torch.bool, device=device) for _ in range(2))
        coef, drive = (torch.empty(frames, dtype=F64, device=device) for _ in range(2))
        self._buffers = Views(lambda n: (index[:n], elapsed[:n], above[:n], below[:n], coef[:n], drive[:n]))
        self._reset()

    def _update(self) -> None:
        rate = self.spec.samplerate
        self._open_level.set(db_to_linear(self.value("threshold_db")))
        self._close_level.set(db_to_linear(self.value("threshold_db") - self.value("hysteresis_db")))
        self._hold_frames.set(round(self.value("hold_ms") * 1e-3 * rate))
        self._attack = coefficient(self.value("attack_ms") * 1e-3, rate)
        self._release = coefficient(self.value("release_ms") * 1e-3, rate)
        self._coefs.set([[self._attack], [self._release]])
        self._drives.set([[0.0], [(1 - self._release) * -self.value("range_db")]])

    def _reset(self) -> None:
        self._follower.reset()
        for latest in (self._last_above, self._last_below, self._last_open):
            latest.reset()
        self._smoother.reset(-self.value("range_db"))  # closed

    @property
    def gain_reduction_db(self) -> torch.Tensor:
        """Attenuation in dB (>= 0) at the end of the last block, ``(1,)`` float64 (for meters)."""
        return self._smoother.state

    def _blends(self, frames: int) -> bool:
        return self._fused

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        if self._fused:
            return fused_dynamics.gate(self, x, self._gain.out[:, : x.shape[-1]], self.blend_ramp(x.shape[-1]))
        index, elapsed, above, below, coef, drive = self._buffers(x.shape[-1])
        level = self._follower.process(self._level.peak(x))
        torch.gt(level, self._open_level.tensor, out=above)
        torch.lt(level, self._close_level.tensor, out=below)
        is_open = torch.gt(self._last_above.process(above), self._last_below.process(below), out=above)
        torch.sub(index, self._last_open.process(is_open), out=elapsed)
        held_open = torch.le(elapsed, self._hold_frames.tensor, out=below)
        coefs, drives = self._coefs.tensor, self._drives.tensor
        torch.where(held_open, coefs[0], coefs[1], out=coef)
        torch.where(held_open, drives[0], drives[1], out=drive)
        reduction = self._smoother.process(drive, coef, min(self._attack, self._release))
        return self._gain.process(x, reduction)
