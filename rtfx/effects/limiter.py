"""Look-ahead brickwall limiter: the output never exceeds the ceiling."""
from __future__ import annotations

import torch

from ..controls import Control
from ..effect import Effect
from ..kernels import fused, fused_limiter
from ..kernels.dynamics import DbGain, LinkedLevel
from ..kernels.envelope import F64, DecayingMax, Views, coefficient, sliding_max
from ..params import Param
from ..spec import ProcessSpec
from .gain import GainRamp, db_to_linear


class Limiter(Effect):
    """Look-ahead peak limiter (stereo-linked): a true ceiling, ``latency`` frames of delay.

    The input is scaled by ``input_gain / ceiling``, limited to 1 (0 dB), and scaled back by the
    ceiling at the output. With look-ahead ``L`` frames, let ``r[m] = max(0, level_db[m])`` be
    the reduction (dB) that scaled input sample ``m`` needs. The gain computer takes

        w[m] = max(r[m-L .. m])               sliding maximum (look-ahead window, L + 1 long)
        h[m] = max(w[m], a * h[m-1])          exponential release (``release_ms``)
        b[n] = mean(h[n-L .. n])              moving average: the gain glides down over L

    and sample ``n - L`` (the audio is delayed by ``L``) leaves with gain ``-b[n]`` dB. Every
    ``h`` in that average covers ``r[n-L]``, so ``b[n] >= r[n-L]``: the gain alone keeps the
    output at or under the ceiling, even while the ceiling moves (it scales the output at
    output time). A final clamp to the ceiling only catches float rounding.

    Args:
        lookahead_ms: look-ahead (and added latency) in ms, fixed for the effect's life.
    """

    type_name = "limiter"
    category = "dynamics"
    fields = {"lookahead_ms": {"type": "number", "minimum": 0.1, "maximum": 20.0}}
    example_args = {"lookahead_ms": 5.0}
    params = (
        Param("ceiling_db", "dB", -24.0, 0.0, -1.0, doc="the output never exceeds this peak level"),
        Param("release_ms", "ms", 1.0, 1000.0, 50.0, scale="log", doc="time to 63% of the gain's recovery"),
        Param("input_gain_db", "dB", 0.0, 24.0, 0.0, doc="gain before limiting (drive into the ceiling)"),
    )

    def __init__(self, lookahead_ms: float = 5.0, **values: float) -> None:
        if not (isinstance(lookahead_ms, (int, float)) and 0.1 <= lookahead_ms <= 20.0):
            raise ValueError(f"limiter: lookahead_ms = {lookahead_ms!r} is outside the allowed range [0.1, 20] ms")
        self.lookahead_ms = float(lookahead_ms)
        #: Frames of delay the look-ahead adds (set by ``prepare``).
        self.latency = 0
        super().__init__(**values)

    def _prepare(self, spec: ProcessSpec) -> None:
        lag = self.latency = max(1, round(self.lookahead_ms * 1e-3 * spec.samplerate))
        frames, device = spec.blocksize, spec.device
        self._driven = torch.empty(spec.channels, frames, device=device)
        self._level = LinkedLevel(spec.channels, frames, device)
        self._needed = torch.zeros(lag + frames, dtype=F64, device=device)  # [r history | r block]
        self._window = torch.empty(frames, dtype=F64, device=device)
        self._release = DecayingMax(frames, device)
        self._held = torch.zeros(lag + frames, dtype=F64, device=device)  # [h history | h block]
        self._sums = torch.zeros(lag + frames + 1, dtype=F64, device=device)  # 0, cumsum(held)
        self._average = torch.empty(frames, dtype=F64, device=device)
        self._audio = torch.zeros(spec.channels, lag + frames, device=device)  # delay line
        self._scratch = torch.empty(spec.channels * lag, dtype=F64, device=device)
        self._buffers = Views(self._cut)
        self._gain = DbGain(spec.channels, frames, device, makeup=True)  # makeup: the ceiling
        self._clamp = None  # the final clamp's bounds, linear: -ceiling, ceiling
        self._floor, self._ceiling = Control(1, device), Control(1, device)
        self._drive = GainRamp(spec)
        self._last_average = self._average[:1].zero_()
        self._fused = fused.available(device)  # the block as one Triton kernel (fused_limiter)
        self._snap_gains()

    def _cut(self, n: int) -> tuple:
        """Views for an ``n``-frame block (made once per block length, see ``Views``)."""
        lag = self.latency
        lines = []
        for line in (self._needed[: lag + n], self._held[: lag + n], self._audio[:, : lag + n]):
            newest = line[..., n : n + lag]  # the next block's history
            staging = self._scratch[: newest.numel()].view(newest.shape) if n < lag else None
            lines.append((line, line[..., lag:], line[..., :lag], newest, staging))
        sums = self._sums[: lag + n + 1]
        return (lines, self._driven[:, :n], self._window[:n], sums[1:], sums[lag + 1 :], sums[:n],
                self._average[:n], self._audio[:, :n])

    @property
    def gain_reduction_db(self) -> torch.Tensor:
        """Gain reduction in dB applied to the last sample of the last block, ``(1,)`` float64
        (for meters; read it between blocks)."""
        return self._last_average[-1:]

    def _snap_gains(self) -> None:
        self._ceiling_db = self.value("ceiling_db")
        self._drive.snap(self._drive_gain())

    def _drive_gain(self) -> float:
        return db_to_linear(self.value("input_gain_db") - self.value("ceiling_db"))

    def _control(self, frames: int) -> None:
        start, self._ceiling_db = self._ceiling_db, self.value("ceiling_db")
        self._gain.move_makeup(start, self._ceiling_db, frames)
        clamp = db_to_linear(max(start, self._ceiling_db))
        if clamp != self._clamp:
            self._floor.set(-clamp)
            self._ceiling.set(clamp)
            self._clamp = clamp
        self._drive.move_to(self._drive_gain(), frames)

    def _update(self) -> None:
        self._release.set_decay(coefficient(self.value("release_ms") * 1e-3, self.spec.samplerate))

    def _reset(self) -> None:
        for state in (self._needed, self._held, self._audio, self._last_average):
            state.zero_()
        self._release.reset()
        self._snap_gains()

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames, lag = x.shape[-1], self.latency
        if self._fused:
            self._last_average = self._average[:frames]
            return fused_limiter.limiter(self, x, self._gain.out[:, :frames])
        lines, driven, window, sums, sums_end, sums_start, average, delayed = self._buffers(frames)
        (needed, new_needed, *_), (held, new_held, *_), (_, new_audio, *_) = lines
        driven = self._drive.apply(x, driven)
        # Reduction each new sample needs, its look-ahead maximum, then the release.
        self._level.process(driven, out=new_needed).clamp_(min=0.0)
        new_held.copy_(self._release.process(sliding_max(needed, lag + 1, window)))
        # Moving average over lag + 1 values of h (prefix sums recomputed from the history).
        torch.cumsum(held, 0, out=sums)
        torch.sub(sums_end, sums_start, out=average).div_(lag + 1)
        self._last_average = average
        # Delay the audio by lag, apply the gain and the ceiling, clamp (rounding only).
        new_audio.copy_(driven)
        out = self._gain.process(delayed, average).clamp_(self._floor.tensor, self._ceiling.tensor)
        for _, _, history, newest, staging in lines:  # the newest lag values: next history
            history.copy_(newest if staging is None else staging.copy_(newest))  # (they may overlap)
        return out

    def _preset_fields(self) -> dict:
        return {"lookahead_ms": self.lookahead_ms}
