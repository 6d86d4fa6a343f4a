"""Envelope recursions of dynamics processors as exact, vectorized block scans.

Each kernel holds its state in a tensor and preallocated float64 buffers, so any block
partition gives the same output (up to float64 rounding) and nothing is allocated per block.
Signals are 1-D ``(frames,)`` float64 tensors (dynamics effects detect one linked level for
all channels).

- ``DecayingMax``: ``y[n] = max(x[n], a * y[n-1])`` (peak hold with exponential release).
- ``OnePole``: ``y[n] = c[n] * y[n-1] + (1 - c[n]) * t[n]`` with a per-sample coefficient.
- ``LatestIndex``: the latest absolute sample index at which a mask was true.
- ``sliding_max``: the maximum over a sliding window.
"""
from __future__ import annotations

import math

import torch

#: Scans keep exponents within ``exp(+-SCAN_RANGE)`` (float64 reaches about exp(709)).
SCAN_RANGE = 600.0

F64 = torch.float64


def coefficient(time_s: float, samplerate: float) -> float:
    """One-pole coefficient ``exp(-1 / (time_s * samplerate))``: a step reaches 63% in ``time_s``."""
    return math.exp(-1.0 / max(time_s * samplerate, 1e-9))


def scan_chunk(smallest: float, frames: int) -> int:
    """Longest chunk over which ``smallest ** chunk`` stays above ``exp(-SCAN_RANGE)``."""
    if smallest >= 1.0:
        return frames
    return max(1, min(frames, int(SCAN_RANGE / -math.log(max(smallest, 1e-300)))))


class DecayingMax:
    """``y[n] = max(x[n], a * y[n-1])`` for ``x >= 0``: instant attack, exponential release.

    Unrolled, ``y[n] = max_k a^(n-k) x[k]`` (with the carried state as ``k = -1``), so

        y[n] = a^n * max(a * y[-1], cummax_k(x[k] * a^-k))

    with ``k`` counted from the start of each chunk (short enough that ``a^-k`` stays finite).

    Args:
        frames: the longest block; device: torch device.
    """

    def __init__(self, frames: int, device) -> None:
        self.frames = frames
        self.state = torch.zeros(1, dtype=F64, device=device)
        self._index = torch.arange(frames, dtype=F64, device=device)
        self._rise = torch.empty(frames, dtype=F64, device=device)  # a^-k
        self._fall = torch.empty(frames, dtype=F64, device=device)  # a^k
        self._held = torch.empty(1, dtype=F64, device=device)
        self._scaled = torch.empty(frames, dtype=F64, device=device)
        self._where = torch.empty(frames, dtype=torch.int64, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)
        self.set_decay(0.0)

    def set_decay(self, decay: float) -> None:
        """Set ``a`` in [0, 1) (a Python float); the state is kept."""
        self.decay = decay
        self._chunk = scan_chunk(decay, self.frames)
        log_decay = math.log(max(decay, 1e-300))
        torch.mul(self._index, log_decay, out=self._fall).exp_()
        torch.mul(self._index, -log_decay, out=self._rise).clamp_(max=SCAN_RANGE).exp_()

    def reset(self) -> None:
        self.state.zero_()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(frames,)`` float64, >= 0. Returns a view of ``(frames,)`` in ``self.out``."""
        frames = x.shape[0]
        for start in range(0, frames, self._chunk):
            n = min(self._chunk, frames - start)
            scaled = torch.mul(x[start : start + n], self._rise[:n], out=self._scaled[:n])
            held, _ = torch.cummax(scaled, 0, out=(self.out[start : start + n], self._where[:n]))
            torch.maximum(held, torch.mul(self.state, self.decay, out=self._held), out=held)
            held.mul_(self._fall[:n])
            self.state.copy_(held[-1:])
        return self.out[:frames]


class OnePole:
    """``y[n] = c[n] * y[n-1] + (1 - c[n]) * t[n]``: a one-pole smoother whose coefficient may
    change every sample (attack while rising, release while falling...).

    A linear time-varying recursion: with ``P[n] = prod_{k<=n} c[k]``,

        y[n] = P[n] * (y[-1] + cumsum_k((1 - c[k]) * t[k] / P[k]))

    evaluated in float64 over chunks short enough that ``P`` never underflows.

    Args:
        frames: the longest block; device: torch device.
    """

    def __init__(self, frames: int, device) -> None:
        self.frames = frames
        self.state = torch.zeros(1, dtype=F64, device=device)
        self._product = torch.empty(frames, dtype=F64, device=device)
        self._drive = torch.empty(frames, dtype=F64, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)

    def reset(self, value: float = 0.0) -> None:
        self.state.fill_(value)

    def process(self, target: torch.Tensor, coef: torch.Tensor, smallest: float) -> torch.Tensor:
        """``target``, ``coef``: ``(frames,)`` float64; ``smallest``: a lower bound of ``coef``
        (a Python float, sets the chunk length). Returns a view of ``(frames,)`` in ``self.out``.
        """
        frames = target.shape[0]
        chunk = scan_chunk(smallest, self.frames)
        for start in range(0, frames, chunk):
            stop = min(start + chunk, frames)
            c, t = coef[start:stop], target[start:stop]
            product = torch.cumprod(c, 0, out=self._product[: stop - start])
            drive = torch.sub(t, torch.mul(c, t, out=self._drive[: stop - start]), out=self._drive[: stop - start])
            y = torch.cumsum(drive.div_(product), 0, out=self.out[start:stop])
            y.add_(self.state).mul_(product)
            self.state.copy_(y[-1:])
        return self.out[:frames]


class LatestIndex:
    """The latest absolute sample index at which a mask was true (``-2**62`` if never).

    ``latest[n] = max(latest[-1], cummax_k(index[k] if mask[k] else -2**62))``.
    """

    NEVER = -(2**62)

    def __init__(self, frames: int, device) -> None:
        self.state = torch.full((1,), self.NEVER, dtype=torch.int64, device=device)
        self._never = torch.full((1,), self.NEVER, dtype=torch.int64, device=device)
        self._marked = torch.empty(frames, dtype=torch.int64, device=device)
        self._where = torch.empty(frames, dtype=torch.int64, device=device)
        self.out = torch.empty(frames, dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.state.fill_(self.NEVER)

    def process(self, mask: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``mask``: ``(frames,)`` bool; ``index``: ``(frames,)`` int64 absolute sample indices."""
        frames = mask.shape[0]
        marked = torch.where(mask, index, self._never, out=self._marked[:frames])
        latest, _ = torch.cummax(marked, 0, out=(self.out[:frames], self._where[:frames]))
        torch.maximum(latest, self.state, out=latest)
        self.state.copy_(latest[-1:])
        return latest


def sliding_max(x: torch.Tensor, window: int, out: torch.Tensor) -> torch.Tensor:
    """``out[i] = max(x[i : i + window])`` for ``i < len(x) - window + 1``.

    Args:
        x: ``(n,)`` tensor, ``n >= window``; out: ``(>= n - window + 1,)`` buffer.
    Returns:
        the ``(n - window + 1,)`` view of ``out``.
    """
    count = x.shape[0] - window + 1
    return torch.amax(x.unfold(0, window, 1), -1, out=out[:count])


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
    then a ``OnePole`` of the attack time smooths the rise. Both are exact scans, so unlike the
    branching detector (whose branch depends on its own output) it vectorizes exactly. The
    release of the peak stage is shortened (``release_for_cascade``) so that the output falls
    63% of a step in ``release_s``; a step up reaches 63% in ``attack_s``.
    ``state`` (``(1,)`` float64) is the latest output: the current gain reduction.
    """

    def __init__(self, frames: int, device) -> None:
        self._peak = DecayingMax(frames, device)
        self._smooth = OnePole(frames, device)
        self._coef = torch.empty(frames, dtype=F64, device=device)
        self.state = self._smooth.state

    def set_times(self, attack_s: float, release_s: float, samplerate: float) -> None:
        self._attack = coefficient(attack_s, samplerate)
        self._coef.fill_(self._attack)
        self._peak.set_decay(coefficient(release_for_cascade(release_s, attack_s), samplerate))

    def reset(self) -> None:
        self._peak.reset()
        self._smooth.reset()

    def process(self, reduction_db: torch.Tensor) -> torch.Tensor:
        """``reduction_db``: ``(frames,)`` float64. Returns the smoothed ``(frames,)`` view."""
        frames = reduction_db.shape[0]
        held = self._peak.process(reduction_db)
        return self._smooth.process(held, self._coef[:frames], self._attack)


class LinkedLevel:
    """Peak magnitude of a block linked over channels: ``max_c |x[c, n]|``, linear or in dB.

    Args:
        channels, frames: the largest block; device: torch device. Levels floor at -200 dB.
    """

    def __init__(self, channels: int, frames: int, device) -> None:
        self._magnitude = torch.empty(channels, frames, device=device)
        self._peak = torch.empty(frames, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)

    def peak(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(channels, frames)`` float32. Returns ``(frames,)`` float64 (a view)."""
        frames = x.shape[-1]
        magnitude = torch.abs(x, out=self._magnitude[:, :frames])
        return self.out[:frames].copy_(torch.amax(magnitude, 0, out=self._peak[:frames]))

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(channels, frames)`` float32. Returns ``(frames,)`` float64 dB (a view)."""
        return self.peak(x).clamp_(min=1e-10).log10_().mul_(20.0)


class DbGain:
    """Multiply a block by ``10 ** ((makeup_db[n] - reduction_db[n]) / 20)``, the same for all
    channels; ``makeup_db`` ramps linearly in dB across the block (no zipper noise).

    Args:
        channels, frames: the largest block; device: torch device.
    """

    def __init__(self, channels: int, frames: int, device) -> None:
        self._steps = torch.arange(1, frames + 1, dtype=F64, device=device)
        self._ramp = torch.empty(frames, dtype=F64, device=device)
        self._linear64 = torch.empty(frames, dtype=F64, device=device)
        self._linear = torch.empty(frames, device=device)
        self.out = torch.empty(channels, frames, device=device)

    def process(self, x: torch.Tensor, reduction_db: torch.Tensor, makeup_start_db: float = 0.0,
                makeup_end_db: float = 0.0) -> torch.Tensor:
        """``x``: ``(channels, frames)``; ``reduction_db``: ``(frames,)`` float64; the makeup
        goes from just after ``makeup_start_db`` to ``makeup_end_db``. Returns a view."""
        frames = x.shape[-1]
        per_db = math.log(10) / 20
        linear64 = torch.mul(reduction_db, -per_db, out=self._linear64[:frames])
        if makeup_start_db == makeup_end_db:
            linear64.add_(makeup_end_db * per_db)
        else:
            step = (makeup_end_db - makeup_start_db) / frames * per_db
            ramp = torch.mul(self._steps[:frames], step, out=self._ramp[:frames])
            linear64.add_(ramp.add_(makeup_start_db * per_db))
        linear = self._linear[:frames]
        linear.copy_(linear64.exp_())
        return torch.mul(x, linear, out=self.out[:, :frames])
