"""The pieces every dynamics effect shares: linked level, attack/release smoothing, dB gain.

Built on the scans of ``rtfx.kernels.envelope``; all signals of the detector path are 1-D
``(frames,)`` float64 tensors (one level for all channels: stereo-linked).
"""
from __future__ import annotations

import math

import torch

from ..controls import LinearRamp
from .envelope import F64, DecayingMax, Smoother, Views, coefficient

#: Natural-log units per dB of amplitude: ``10 ** (db / 20) = exp(db * PER_DB)``.
PER_DB = math.log(10) / 20


def release_for_cascade(release_s: float, attack_s: float) -> float:
    """The release time of a peak detector whose decay, smoothed by a one-pole of
    ``attack_s``, falls by 63% in ``release_s``.

    After a step down, the decay ``exp(-t / r)`` smoothed by a one-pole of time ``a`` is
    ``(r exp(-t/r) - a exp(-t/a)) / (r - a)``; we solve for the ``r`` at which it reaches
    ``exp(-1)`` at ``t = release_s`` (bisection; it grows with ``r``). If ``release_s`` is not
    longer than ``attack_s`` there is none: the release then lasts about ``attack_s``.
    """

    def remaining(r: float) -> float:
        t, a = release_s, attack_s
        if abs(r - a) < 1e-9 * a:
            return (1 + t / a) * math.exp(-t / a)
        return (r * math.exp(-t / r) - a * math.exp(-t / a)) / (r - a)

    low, high = 1e-9, release_s
    if remaining(low) >= math.exp(-1):
        return low
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if remaining(middle) < math.exp(-1) else (low, middle)
    return 0.5 * (low + high)


class AttackRelease:
    """Smooths a gain reduction in dB (>= 0): rises with ``attack_s``, falls with ``release_s``.

    A decoupled peak detector (Giannoulis, Massberg & Reiss 2012): ``DecayingMax`` releases,
    then a ``Smoother`` of the attack time smooths the rise. Both are exact scans, so unlike
    the branching detector (whose branch depends on its own output) it vectorizes exactly. The
    release of the peak stage is shortened (``release_for_cascade``) so that the output falls
    63% of a step in ``release_s``; a step up reaches 63% in ``attack_s``.
    ``state`` (``(1,)`` float64) is the latest output: the current gain reduction.
    """

    def __init__(self, frames: int, device) -> None:
        self._peak = DecayingMax(frames, device)
        self._smooth = Smoother(frames, device)
        self.state = self._smooth.state

    def set_times(self, attack_s: float, release_s: float, samplerate: float) -> None:
        self._smooth.set_coefficient(coefficient(attack_s, samplerate))
        self._peak.set_decay(coefficient(release_for_cascade(release_s, attack_s), samplerate))

    def fix_chunks(self, shortest_attack_s: float, samplerate: float) -> None:
        """Process every block the same way (for a CUDA graph), for any attack time from
        ``shortest_attack_s`` up."""
        self._smooth.fix_chunks(coefficient(shortest_attack_s, samplerate))

    def reset(self) -> None:
        self._peak.reset()
        self._smooth.reset()

    def process(self, reduction_db: torch.Tensor) -> torch.Tensor:
        """``reduction_db``: ``(frames,)`` float64. Returns the smoothed ``(frames,)`` view."""
        return self._smooth.process(self._peak.process(reduction_db))


class LinkedLevel:
    """Peak magnitude of a block linked over channels: ``max_c |x[c, n]|``, linear or in dB.

    Args:
        channels, frames: the largest block; device: torch device. Levels floor at -200 dB.
    """

    def __init__(self, channels: int, frames: int, device) -> None:
        self._magnitude = torch.empty(channels, frames, device=device)
        self._peak = torch.empty(frames, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)
        self._views = Views(lambda n: (self._magnitude[:, :n], self._peak[:n], self.out[:n]))

    def _max_magnitude(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        magnitude, peak, out = self._views(x.shape[-1])
        return torch.amax(torch.abs(x, out=magnitude), 0, out=peak), out

    def peak(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(channels, frames)`` float32. Returns ``(frames,)`` float64 (a view)."""
        peak, out = self._max_magnitude(x)
        return out.copy_(peak)

    def process(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(channels, frames)`` float32. Returns ``(frames,)`` float64 dB, written to
        ``out`` if given, else to a view of ``self.out``."""
        peak, own = self._max_magnitude(x)
        return torch.mul(peak.clamp_(min=1e-10).log10_(), 20.0, out=own if out is None else out)


class DbGain:
    """Multiply a block by ``10 ** ((makeup_db[n] - reduction_db[n]) / 20)``, the same for all
    channels. Without ``makeup`` it stays 0 dB; with it, the host moves it before each block
    (``move_makeup``) and it ramps linearly in dB across the block (no zipper noise).

    Args:
        channels, frames: the largest block; device: torch device; makeup: whether there is one.
    """

    def __init__(self, channels: int, frames: int, device, makeup: bool = False) -> None:
        self._makeup = LinearRamp(frames, device) if makeup else None  # in dB * PER_DB
        self._linear = torch.empty(frames, device=device)
        self.out = torch.empty(channels, frames, device=device)
        self._views = Views(lambda n: (self._linear[:n], self.out[:, :n]))

    def move_makeup(self, start_db: float, end_db: float, frames: int) -> None:
        """Host side: the next block's makeup goes from just after ``start_db`` to ``end_db``."""
        self._makeup.set(start_db * PER_DB, end_db * PER_DB, frames)

    def process(self, x: torch.Tensor, reduction_db: torch.Tensor) -> torch.Tensor:
        """``x``: ``(channels, frames)``; ``reduction_db``: ``(frames,)`` float64. Returns a view."""
        frames = x.shape[-1]
        linear, out = self._views(frames)
        torch.mul(reduction_db, -PER_DB, out=linear)
        if self._makeup is not None:
            linear.add_(self._makeup.tensor[:frames])
        return torch.mul(x, linear.exp_(), out=out)
