"""Envelope recursions of dynamics processors as exact, vectorized block scans.

Each kernel holds its state in a tensor and preallocated float64 buffers, so any block
partition gives the same output (up to float64 rounding) and nothing is allocated per block.
Signals are 1-D ``(frames,)`` float64 tensors (dynamics effects detect one linked level for
all channels).

- ``DecayingMax``: ``y[n] = max(x[n], a * y[n-1])`` (peak hold with exponential release).
- ``Smoother``: ``y[n] = c * y[n-1] + (1 - c) * t[n]`` (one-pole, fixed coefficient).
- ``OnePole``: ``y[n] = c[n] * y[n-1] + u[n]`` (one-pole, a coefficient per sample).
- ``LatestIndex``: the latest absolute sample index at which a mask was true.
- ``sliding_max``: the maximum over a sliding window.
- ``AttackRelease``, ``LinkedLevel``, ``DbGain``: the pieces every dynamics effect shares.

Slicing a tensor costs about as much as a small op on the CPU, so the views of each block
length are cut once (``Views``) and reused.
"""
from __future__ import annotations

import math
from typing import Callable

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


class Views:
    """Views of preallocated buffers cut to one block length, made the first time that
    length is seen and reused after (``make(frames) -> tuple of views``)."""

    def __init__(self, make: Callable[[int], tuple]) -> None:
        self._make = make
        self._cache: dict[int, tuple] = {}

    def __call__(self, frames: int) -> tuple:
        views = self._cache.get(frames)
        if views is None:
            views = self._cache[frames] = self._make(frames)
        return views


class _Scan:
    """Base of the scans: ``out`` buffer, ``(1,)`` ``state``, and chunked processing.

    ``_chunk`` is the longest piece one scan may take; a longer block is cut into pieces.
    Subclasses implement ``_scan(views, *inputs)`` on one piece, writing ``views[0]`` (the
    output) and the state (``views[1]``: the output's last sample).
    """

    def __init__(self, frames: int, device) -> None:
        self.frames = frames
        self.device = device
        self.state = torch.zeros(1, dtype=F64, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)
        self._piece = torch.empty(frames, dtype=F64, device=device)
        self._chunk = frames
        self._views = Views(lambda n: self._make_views(self.out, n))
        self._piece_views = Views(lambda n: self._make_views(self._piece, n))

    def _make_views(self, out: torch.Tensor, n: int) -> tuple:
        return (out[:n], out[n - 1 : n])

    def _run(self, frames: int, *inputs: torch.Tensor) -> torch.Tensor:
        if frames <= self._chunk:
            views = self._views(frames)
            self._scan(views, *inputs)
            return views[0]
        for start in range(0, frames, self._chunk):
            n = min(self._chunk, frames - start)
            piece = self._piece_views(n)
            self._scan(piece, *(x[start : start + n] for x in inputs))
            self.out[start : start + n].copy_(piece[0])
        return self.out[:frames]

    def _scan(self, views: tuple, *inputs: torch.Tensor) -> None:
        raise NotImplementedError


def _powers(index: torch.Tensor, log_base: float, out: torch.Tensor) -> torch.Tensor:
    """``out = base ** index``, exponents clamped to ``+-SCAN_RANGE``."""
    return torch.mul(index, log_base, out=out).clamp_(-SCAN_RANGE, SCAN_RANGE).exp_()


class DecayingMax(_Scan):
    """``y[n] = max(x[n], a * y[n-1])`` for ``x >= 0``: instant attack, exponential release.

    Unrolled, ``y[n] = max_k a^(n-k) x[k]`` (with the carried state as ``k = -1``), so

        y[n] = a^n * max(a * y[-1], cummax_k(x[k] * a^-k))

    with ``k`` counted from the start of each chunk (short enough that ``a^-k`` stays finite).
    ``state`` holds ``a * y[-1]``, the carried term itself.

    Args:
        frames: the longest block; device: torch device.
    """

    def __init__(self, frames: int, device) -> None:
        super().__init__(frames, device)
        self._index = torch.arange(frames, dtype=F64, device=device)
        self._rise = torch.empty(frames, dtype=F64, device=device)  # a^-k
        self._fall = torch.empty(frames, dtype=F64, device=device)  # a^k
        self._scaled = torch.empty(frames, dtype=F64, device=device)
        self._where = torch.empty(frames, dtype=torch.int64, device=device)
        self.set_decay(0.0)

    def _make_views(self, out: torch.Tensor, n: int) -> tuple:
        return super()._make_views(out, n) + (self._rise[:n], self._fall[:n], self._scaled[:n], self._where[:n])

    def set_decay(self, decay: float) -> None:
        """Set ``a`` in [0, 1) (a Python float); the state is kept."""
        self.decay = decay
        self._chunk = scan_chunk(decay, self.frames)
        log_decay = math.log(max(decay, 1e-300))
        _powers(self._index, log_decay, self._fall)
        _powers(self._index, -log_decay, self._rise)

    def reset(self) -> None:
        self.state.zero_()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(frames,)`` float64, >= 0. Returns a view of ``(frames,)`` in ``self.out``."""
        return self._run(x.shape[0], x)

    def _scan(self, views: tuple, x: torch.Tensor) -> None:
        out, last, rise, fall, scaled, where = views
        torch.cummax(torch.mul(x, rise, out=scaled), 0, out=(out, where))
        torch.maximum(out, self.state, out=out).mul_(fall)
        torch.mul(last, self.decay, out=self.state)


class Smoother(_Scan):
    """``y[n] = c * y[n-1] + (1 - c) * t[n]``: a one-pole smoother with a fixed coefficient.

    Unrolled: ``y[k] = c^(k+1) * y[-1] + (1 - c) * c^k * cumsum_j(c^-j * t[j])``.

    Args:
        frames: the longest block; device: torch device.
    """

    def __init__(self, frames: int, device) -> None:
        super().__init__(frames, device)
        self._index = torch.arange(frames, dtype=F64, device=device)
        self._rise = torch.empty(frames, dtype=F64, device=device)  # c^-j
        self._fall = torch.empty(frames, dtype=F64, device=device)  # (1 - c) c^k
        self._carry = torch.empty(frames, dtype=F64, device=device)  # c^(k+1)
        self._scaled = torch.empty(frames, dtype=F64, device=device)
        self.set_coefficient(0.0)

    def _make_views(self, out: torch.Tensor, n: int) -> tuple:
        return super()._make_views(out, n) + (self._rise[:n], self._fall[:n], self._carry[:n], self._scaled[:n])

    def set_coefficient(self, coef: float) -> None:
        """Set ``c`` in [0, 1) (a Python float); the state is kept."""
        self.coef = coef
        self._chunk = scan_chunk(coef, self.frames)
        log_coef = math.log(max(coef, 1e-300))
        _powers(self._index, -log_coef, self._rise)
        _powers(self._index, log_coef, self._fall)
        torch.mul(self._fall, coef, out=self._carry)
        self._fall.mul_(1.0 - coef)

    def reset(self, value: float = 0.0) -> None:
        self.state.fill_(value)

    def process(self, target: torch.Tensor) -> torch.Tensor:
        """``target``: ``(frames,)`` float64. Returns a view of ``(frames,)`` in ``self.out``."""
        return self._run(target.shape[0], target)

    def _scan(self, views: tuple, target: torch.Tensor) -> None:
        out, last, rise, fall, carry, scaled = views
        torch.cumsum(torch.mul(target, rise, out=scaled), 0, out=out)
        out.mul_(fall).addcmul_(carry, self.state)
        self.state.copy_(last)


class OnePole(_Scan):
    """``y[n] = c[n] * y[n-1] + u[n]``: a one-pole whose coefficient may change every sample
    (attack while opening, release while closing...); ``u = (1 - c) * target`` for a smoother.

    A linear time-varying recursion: with ``P[n] = prod_{k<=n} c[k]``,

        y[n] = P[n] * (y[-1] + cumsum_k(u[k] / P[k]))

    evaluated in float64 over chunks short enough that ``P`` never underflows.

    Args:
        frames: the longest block; device: torch device.
    """

    def __init__(self, frames: int, device) -> None:
        super().__init__(frames, device)
        self._product = torch.empty(frames, dtype=F64, device=device)
        self._drive = torch.empty(frames, dtype=F64, device=device)

    def _make_views(self, out: torch.Tensor, n: int) -> tuple:
        return super()._make_views(out, n) + (self._product[:n], self._drive[:n])

    def reset(self, value: float = 0.0) -> None:
        self.state.fill_(value)

    def process(self, drive: torch.Tensor, coef: torch.Tensor, smallest: float) -> torch.Tensor:
        """``drive`` (``u``), ``coef`` (``c``): ``(frames,)`` float64; ``smallest``: a lower
        bound of ``coef`` (a Python float, sets the chunk length). Returns a view in ``self.out``.
        """
        self._chunk = scan_chunk(smallest, self.frames)
        return self._run(drive.shape[0], drive, coef)

    def _scan(self, views: tuple, drive: torch.Tensor, coef: torch.Tensor) -> None:
        out, last, product, scaled = views
        torch.cumprod(coef, 0, out=product)
        torch.cumsum(torch.div(drive, product, out=scaled), 0, out=out)
        out.add_(self.state).mul_(product)
        self.state.copy_(last)


class LatestIndex:
    """The latest sample index at which a mask was true, counted from the current block's
    start (``NEVER``, far in the past, if none yet).

    ``latest[n] = max(latest[-1], cummax_k(k if mask[k] else NEVER))``; after each block the
    state is moved back by the block length. No absolute sample counter is needed (a CUDA
    graph can replay it).

    Args:
        frames: the longest block; device: torch device.
    """

    NEVER = -(2**62)

    def __init__(self, frames: int, device) -> None:
        self.state = torch.full((1,), self.NEVER, dtype=torch.int64, device=device)
        self._never = torch.full((1,), self.NEVER, dtype=torch.int64, device=device)
        #: Sample indices within a block, 0, 1, ... (callers may share them).
        self.index = torch.arange(frames, dtype=torch.int64, device=device)
        self._marked = torch.empty(frames, dtype=torch.int64, device=device)
        self._where = torch.empty(frames, dtype=torch.int64, device=device)
        self.out = torch.empty(frames, dtype=torch.int64, device=device)
        self._views = Views(lambda n: (self.index[:n], self._marked[:n], self._where[:n], self.out[:n], self.out[n - 1 : n]))

    def reset(self) -> None:
        self.state.fill_(self.NEVER)

    def process(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask``: ``(frames,)`` bool. Returns ``(frames,)`` int64 indices (a view)."""
        frames = mask.shape[0]
        index, marked, where, latest, last = self._views(frames)
        torch.cummax(torch.where(mask, index, self._never, out=marked), 0, out=(latest, where))
        torch.maximum(latest, self.state, out=latest)
        torch.sub(last, frames, out=self.state)
        return latest


def sliding_max(x: torch.Tensor, window: int, out: torch.Tensor) -> torch.Tensor:
    """``out[i] = max(x[i : i + window])`` for every ``i < len(x) - window + 1``.

    Args:
        x: ``(n,)`` tensor, ``n >= window``; out: ``(n - window + 1,)`` tensor.
    """
    return torch.amax(x.unfold(0, window, 1), -1, out=out)


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
    channels; ``makeup_db`` ramps linearly in dB across the block (no zipper noise).

    Args:
        channels, frames: the largest block; device: torch device.
    """

    def __init__(self, channels: int, frames: int, device) -> None:
        self._steps = torch.arange(1, frames + 1, dtype=F64, device=device)
        self._ramp = torch.empty(frames, dtype=F64, device=device)
        self._linear = torch.empty(frames, device=device)
        self.out = torch.empty(channels, frames, device=device)
        self._views = Views(lambda n: (self._steps[:n], self._ramp[:n], self._linear[:n], self.out[:, :n]))

    def process(self, x: torch.Tensor, reduction_db: torch.Tensor, makeup_start_db: float = 0.0,
                makeup_end_db: float = 0.0) -> torch.Tensor:
        """``x``: ``(channels, frames)``; ``reduction_db``: ``(frames,)`` float64; the makeup
        goes from just after ``makeup_start_db`` to ``makeup_end_db``. Returns a view."""
        frames = x.shape[-1]
        steps, ramp, linear, out = self._views(frames)
        per_db = math.log(10) / 20
        if makeup_start_db == makeup_end_db:
            torch.mul(reduction_db, -per_db, out=linear).add_(makeup_end_db * per_db)
        else:
            torch.mul(steps, (makeup_end_db - makeup_start_db) / frames, out=ramp).add_(makeup_start_db)
            torch.sub(ramp, reduction_db, out=linear).mul_(per_db)
        return torch.mul(x, linear.exp_(), out=out)
