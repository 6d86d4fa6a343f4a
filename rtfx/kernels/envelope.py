"""Envelope recursions of dynamics processors as exact, vectorized block scans.

Each kernel holds its state in a tensor and preallocated float64 buffers, so any block
partition gives the same output (up to float64 rounding) and nothing is allocated per block.
Signals are 1-D ``(frames,)`` float64 tensors (dynamics effects detect one linked level for
all channels). ``process`` only launches kernels on fixed buffers, with coefficients held in
device tensors (set by the host between blocks), so a CUDA graph can replay it; the linear
scans cut long blocks into chunks, which ``fix_chunks`` makes the same for every block.

- ``DecayingMax``: ``y[n] = max(x[n], a * y[n-1])`` (peak hold with exponential release).
- ``Smoother``: ``y[n] = c * y[n-1] + (1 - c) * t[n]`` (one-pole, fixed coefficient).
- ``OnePole``: ``y[n] = c[n] * y[n-1] + u[n]`` (one-pole, a coefficient per sample).
- ``LatestIndex``: the latest sample index at which a mask was true.
- ``sliding_max``: the maximum over a sliding window.

``rtfx.kernels.dynamics`` builds the detectors of the dynamics effects from them.

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
    """Base of the linear scans: ``out`` buffer, ``(1,)`` ``state``, and chunked processing.

    ``_chunk`` is the longest piece one scan may take (set from the smallest coefficient); a
    longer block is cut into pieces. Subclasses implement ``_scan(views, *inputs)`` on one
    piece, writing ``views[0]`` (the output) and the state (``views[1]``: the output's last
    sample).
    """

    def __init__(self, frames: int, device) -> None:
        self.frames = frames
        self.state = torch.zeros(1, dtype=F64, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)
        self._piece = torch.empty(frames, dtype=F64, device=device)
        self._chunk = frames
        self._fixed = 0  # the chunk length fix_chunks set (0: follows the coefficients)
        self._views = Views(lambda n: self._make_views(self.out, n))
        self._piece_views = Views(lambda n: self._make_views(self._piece, n))

    def fix_chunks(self, smallest: float) -> None:
        """Cut every block the same way from now on (a CUDA graph replays one cut): in chunks
        short enough for any coefficient >= ``smallest``."""
        self._fixed = self._chunk = scan_chunk(smallest, self.frames)

    def _set_chunk(self, smallest: float) -> None:
        """Chunks short enough for coefficients >= ``smallest`` (unless fixed)."""
        self._chunk = self._fixed or scan_chunk(smallest, self.frames)

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


class DecayingMax:
    """``y[n] = max(x[n], a * y[n-1])`` for ``x >= 0``: instant attack, exponential release.

    Unrolled, ``y[n] = max_k a^(n-k) x[k]`` (with the carried term ``a * y[-1]`` as ``k = -1``).
    In logs, with ``t[k] = k log a``,

        log y[n] = t[n] + max(log(a * y[-1]), cummax_k(log x[k] - t[k]))

    one scan for any block length and any ``a`` (where the products ``a^-k`` would overflow,
    their logs cannot). The carried ``log(a * y[-1])`` sits in the slot before the block's
    logs, so the running maximum takes it in. Rounding grows with ``|t|``: relative errors
    of ~3e-13 for ``a = 0.3``, ~1e-10 for ``a = 0``, over 1024 frames.

    Args:
        frames: the longest block; device: torch device.
    """

    def __init__(self, frames: int, device) -> None:
        self._steps = torch.arange(frames + 1, dtype=F64, device=device)
        self._table = torch.empty(frames + 1, dtype=F64, device=device)  # t[k] = k log a
        self._logs = torch.empty(frames + 1, dtype=F64, device=device)  # [carried, log x[k] - t[k]]
        self._maxima = torch.empty(frames + 1, dtype=F64, device=device)
        self._where = torch.empty(frames + 1, dtype=torch.int64, device=device)
        self.out = torch.empty(frames, dtype=F64, device=device)
        self._carried = self._logs[:1]
        self._views = Views(self._make_views)
        self.set_decay(0.0)
        self.reset()

    def _make_views(self, n: int) -> tuple:
        table, logs, maxima = self._table, self._logs, self._maxima
        return (table[:n], table[n : n + 1], logs[: n + 1], logs[1 : n + 1], maxima[: n + 1],
                maxima[1 : n + 1], maxima[n : n + 1], self._where[: n + 1], self.out[:n])

    def set_decay(self, decay: float) -> None:
        """Set ``a`` in [0, 1) (a Python float); the state is kept. Host side, between blocks."""
        self.decay = decay
        torch.mul(self._steps, math.log(max(decay, 1e-300)), out=self._table)

    def reset(self) -> None:
        self._carried.fill_(-math.inf)

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(frames,)`` float64, >= 0. Returns a view of ``(frames,)`` in ``self.out``."""
        table, table_end, scan_in, logs, scan_out, maxima, last, where, out = self._views(x.shape[0])
        torch.log(x, out=logs).sub_(table)
        torch.cummax(scan_in, 0, out=(scan_out, where))
        torch.add(last, table_end, out=self._carried)  # log(a * y[n-1]) = t[n] + max
        return torch.add(maxima, table, out=out).exp_()


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
        self._set_chunk(coef)
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
        bound of ``coef`` (a Python float, sets the chunk length unless fixed). Returns a view
        in ``self.out``.
        """
        self._set_chunk(smallest)
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
