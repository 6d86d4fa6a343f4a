"""A multi-channel delay line: write blocks, read them back at integer or fractional delays.

Per block, the host calls ``advance(frames)``: ``start`` is then the buffer index of the
block's first sample, and the kernels write the block (or pieces of it, ``write_at``) and
read at buffer positions ``start + i - delay``.

By default the line is a linear buffer, not a ring: samples are written at ``now`` and ``now``
grows. When a block would not fit, the newest ``history`` samples are copied back to the start
(one copy every ``history + max_block`` frames or so, never in the middle of a block). So
every read is a plain index into the buffer, never a modulo, and reads at a fixed delay are
slices (views).

With ``ring`` (capture mode) the buffer is a ring of ``size`` samples that never moves: the
kernels write through an index tensor the host fills (``Control``), reads wrap their taps
modulo ``size``, and reads at delays that hold still for a block go through ``SteadyReads``.
So every block runs the same kernels with the same arguments (a CUDA graph can replay them).

Interpolation. A read at buffer position ``p`` (float) uses ``P`` taps starting at
``floor(p) - (P/2 - 1)``; with ``mu = p - floor(p)`` the tap weights are a polynomial in
``mu``::

    w = [1, mu, mu^2, ..., mu^(P-1)] @ COEFFS[kind]        COEFFS: (P, P), rows = powers

(evaluated by Horner's rule: a general ``pow`` costs ~80 us per block on the CPU).

- ``linear``   (P = 2): ``(1 - mu) x0 + mu x1``.
- ``lagrange`` (P = 4): the cubic through ``x-1, x0, x1, x2`` (maximally flat delay).
- ``hermite``  (P = 4): Catmull-Rom (continuous slope: smoother under modulation).

Every kind reproduces integer delays exactly (``mu = 0`` gives the weights ``[.., 1, ..]``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..controls import Control

COEFFS = {
    "linear": ((1.0, 0.0), (-1.0, 1.0)),
    "lagrange": (
        (0.0, 1.0, 0.0, 0.0),
        (-1 / 3, -1 / 2, 1.0, -1 / 6),
        (1 / 2, -1.0, 1 / 2, 0.0),
        (-1 / 6, 1 / 2, -1 / 2, 1 / 6),
    ),
    "hermite": (
        (0.0, 1.0, 0.0, 0.0),
        (-0.5, 0.0, 0.5, 0.0),
        (1.0, -2.5, 2.0, -0.5),
        (-0.5, 1.5, -1.5, 0.5),
    ),
}
INTERPOLATIONS = tuple(COEFFS)


def tap_weights(kind: str, mu: float) -> list[float]:
    """The ``P`` tap weights of ``kind`` for the fraction ``mu`` in [0, 1), as Python floats."""
    rows = COEFFS[kind]
    return [sum(row[j] * mu**power for power, row in enumerate(rows)) for j in range(len(rows))]


def fixed_taps(kind: str, delay: float) -> tuple[int, list[float]]:
    """A read ``delay`` samples back: the first tap's offset from the output's time and the
    ``P`` tap weights."""
    first = math.floor(-delay)
    weights = tap_weights(kind, -delay - first)
    return first - (len(weights) // 2 - 1), weights


class DelayLine:
    """Delay memory for ``channels`` channels, float32 on ``device``, preallocated.

    Args:
        channels: number of channels.
        max_delay: the longest delay that will be read, in samples (fractional allowed).
        max_block: the longest block ``advance`` gets.
        device: torch device.
        interpolation: one of ``INTERPOLATIONS``.
        voices: reads per output sample: ``read`` takes ``voices`` rows of positions per
            channel, ``(channels, voices * m)``, and returns their mean ``(channels, m)``.
        ring: a fixed ring buffer written and read through index tensors (capture mode).

    Timing: a read for the sample written at index ``t`` with delay ``d`` is at position
    ``t - d``; it needs the taps up to ``floor(t - d) + P/2``, so a delay of at least
    ``min_delay = P/2`` samples only touches samples already written.
    """

    def __init__(self, channels: int, max_delay: float, max_block: int, device="cpu",
                 interpolation: str = "hermite", voices: int = 1, ring: bool = False) -> None:
        if interpolation not in COEFFS:
            raise ValueError(f"interpolation = {interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
        self.interpolation = interpolation
        self.taps = len(COEFFS[interpolation])
        self.min_delay = self.taps // 2
        self.history = math.ceil(max_delay) + self.taps + 1
        self.max_block = max_block
        self.ring = ring
        device = torch.device(device)
        f32, f64 = dict(device=device, dtype=torch.float32), dict(device=device, dtype=torch.float64)
        long = dict(device=device, dtype=torch.long)
        readers, self.voices = voices * max_block, voices
        self.channels = channels
        size = channels * readers  # of the flat scratch, viewed as (channels, m, ...) per read
        if ring:
            # The block being written and everything its reads reach back to (``history``).
            self.size = self.history + max_block
            self.buffer = torch.zeros(channels, self.size, **f32)
            # ``_source[c, i, k] = buffer[c, i]``: ``gather`` takes tap k from the index's column k.
            self._source = self.buffer.unsqueeze(-1).expand(channels, self.size, self.taps)
            self._tap_offsets = torch.arange(1 - self.taps // 2, self.taps // 2 + 1, **long)
            self._ring_index = torch.empty(size * self.taps, **long)
            self._write_index = Control(max_block, device, torch.long)
            self._block_steps = np.arange(max_block)
        else:
            # ``_source[c, i]`` holds the taps ``buffer[c, i - P/2 + 1 : i + P/2 + 1]``: indexed
            # by floor(position) directly (the storage starts P/2 - 1 samples before the buffer).
            lead = self.taps // 2 - 1
            storage = torch.zeros(channels, lead + 2 * self.history + max_block, **f32)
            self.buffer = storage[:, lead:]
            self._source = storage.unfold(1, self.taps, 1)
        coeffs = torch.tensor(COEFFS[interpolation], **f32) / voices  # the voices' mean
        self._rows = tuple(coeffs)  # by power of mu
        self._floor = torch.empty(size, **f64)
        self._index = torch.empty(size, **long)
        self._mu = torch.empty(size, **f32)
        self._weights = torch.empty(size * self.taps, **f32)
        self._taps = torch.empty_like(self._weights)
        # Views of the scratch by read length, made on first use (a view costs ~1.5 us).
        self._locate_views: dict[int, tuple] = {}
        self._gather_views: dict[int, tuple] = {}
        self._fixed_taps: dict[float, tuple] = {}  # by delay, for ``read_fixed``
        self.reset()

    def reset(self) -> None:
        """Silence the whole memory."""
        self.buffer.zero_()
        self.now = self.start = 0 if self.ring else self.history

    def advance(self, frames: int) -> None:
        """Host side of a block of ``frames`` (at most ``max_block``): ``start`` becomes its
        first sample's buffer index, ``now`` the index after its last."""
        if self.ring:
            index = self._write_index.values
            np.add(self._block_steps, self.now, out=index)
            if self.now + len(index) > self.size:  # the block may wrap
                np.remainder(index, self.size, out=index)
            self._write_index.commit()
            self.start, self.now = self.now, (self.now + frames) % self.size
            return
        if self.now + frames > self.buffer.shape[-1]:  # make room: the newest history moves back
            keep = self.history
            self.buffer[:, :keep].copy_(self.buffer[:, self.now - keep : self.now])
            self.now = keep
        self.start = self.now
        self.now += frames

    def write_at(self, x: torch.Tensor, begin: int = 0) -> None:
        """Write ``x`` ``(channels, m)`` at the block's samples ``begin .. begin + m - 1``."""
        if self.ring:
            self.buffer.index_copy_(1, self._write_index.tensor[begin : begin + x.shape[-1]], x)
        else:
            self.buffer[:, self.start + begin : self.start + begin + x.shape[-1]].copy_(x)

    def write(self, x: torch.Tensor) -> None:
        """Append a block ``(channels, frames)``: ``advance`` and ``write_at``."""
        self.advance(x.shape[-1])
        self.write_at(x)

    def read_fixed(self, start: int, delay: float, frames: int, out: torch.Tensor) -> torch.Tensor:
        """Samples ``start + i - delay`` for ``i < frames``: a weighted sum of ``P`` slices.
        Linear lines only (a ring reads held delays with ``SteadyReads``).

        Args:
            start: buffer index of the first output's time (e.g. ``self.start``).
            delay: in samples, ``>= min_delay`` behind anything not yet written.
            out: ``(channels, >= frames)`` buffer; returns its ``(channels, frames)`` view.
        """
        taps = self._fixed_taps.get(delay) or self._make_fixed_taps(delay)
        out = out[:, :frames]
        (first, weight), *rest = taps
        torch.mul(self.buffer[:, start + first : start + first + frames], weight, out=out)
        for offset, weight in rest:
            out.add_(self.buffer[:, start + offset : start + offset + frames], alpha=weight)
        return out

    def _make_fixed_taps(self, delay: float) -> tuple:
        """``(offset from start, weight)`` of each nonzero tap of a read at ``delay``."""
        first, weights = fixed_taps(self.interpolation, delay)
        taps = tuple((first + k, w) for k, w in enumerate(weights) if w != 0.0)
        if len(self._fixed_taps) >= 8:  # a few delays in use at a time (crossfades)
            self._fixed_taps.clear()
        self._fixed_taps[delay] = taps
        return taps

    def locate(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Taps and tap weights for fractional buffer ``positions``.

        Args:
            positions: ``(channels, voices * m)`` float64 buffer positions, e.g.
                ``start + i - delay[v, i]`` (voice-major); in a ring, any integer offset of
                them (taps wrap modulo ``size``).
        Returns:
            ``index`` ``(channels, m, P)`` (what ``gather`` takes) and ``weights``
            ``(channels, m, P)``: views into internal buffers, valid until the next ``locate``.
        """
        views = self._locate_views.get(positions.shape[-1]) or self._make_locate_views(positions.shape[-1])
        floor, floor_column, index, taps_index, mu, weights = views
        torch.floor(positions, out=floor)
        index.copy_(floor_column)
        torch.sub(positions, floor, out=floor)
        mu.copy_(floor_column)  # the fraction, float32
        rows = self._rows
        torch.addcmul(rows[-2], rows[-1], mu, out=weights)  # Horner's rule in mu
        for power in range(self.taps - 3, -1, -1):
            torch.addcmul(rows[power], weights, mu, out=weights)
        if self.ring:
            torch.add(index, self._tap_offsets, out=taps_index).remainder_(self.size)
        return taps_index, weights

    def _make_locate_views(self, m: int) -> tuple:
        channels, taps = self.channels, self.taps
        floor = self._floor[: channels * m].view(channels, m)
        index = self._index[: channels * m].view(channels, m, 1)
        mu = self._mu[: channels * m].view(channels, m, 1)
        weights = self._weights[: channels * m * taps].view(channels, m, taps)
        if self.ring:  # each tap's ring index
            taps_index = self._ring_index[: channels * m * taps].view(channels, m, taps)
        else:  # the window's index, for every tap
            taps_index = index.expand(channels, m, taps)
        views = (floor, floor.unsqueeze(-1), index, taps_index, mu, weights)
        self._locate_views[m] = views
        return views

    def gather(self, index: torch.Tensor, weights: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The interpolated samples for (a slice of) what ``locate`` returned, into ``out``
        ``(channels, m)`` (the mean over voices). Every tap must already be written."""
        points = index.shape[1]
        views = self._gather_views.get(points)
        if views is None:
            channels, taps = self.channels, self.taps
            values = self._taps[: channels * points * taps].view(channels, points, taps)
            views = self._gather_views[points] = (values, values.view(channels, self.voices, -1, taps))
        torch.gather(self._source, 1, index, out=views[0]).mul_(weights)
        return torch.sum(views[1], dim=(1, 3), out=out)

    def read(self, positions: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Interpolated samples at fractional buffer ``positions`` ``(channels, voices * m)``
        float64, averaged over voices into ``out`` ``(channels, m)``; returns ``out``."""
        return self.gather(*self.locate(positions), out)


class SteadyReads:
    """Reads of a ring ``DelayLine`` at ``count`` delays that hold still for a block (the
    heads of an echo), with each delay's taps in device tensors the host writes (``set``).

    Args:
        line: a ring line (``ring=True``).
        count: number of delays read.
        max_frames: the longest read (a piece of a block).
    """

    def __init__(self, line: DelayLine, count: int, max_frames: int) -> None:
        if not line.ring:
            raise ValueError("SteadyReads reads a ring DelayLine")
        self.line = line
        device, taps, span = line.buffer.device, line.taps, max_frames + line.taps - 1
        self._first = Control((count, 1), device, torch.long)  # ring index of the block's first tap
        self._weights = Control((count, 1, taps), device)
        self._steps = torch.arange(line.max_block + taps - 1, device=device)  # from the block's start
        self._index = torch.empty(count * span, device=device, dtype=torch.long)
        self._samples = torch.empty(line.channels * count * span, device=device)
        self._products = torch.empty(line.channels * count * max_frames * taps, device=device)
        self._out = torch.empty(line.channels * count * max_frames, device=device)
        self._delays: list[float | None] = [None] * count
        self._offsets = [0] * count  # first tap's offset from the output's time, per delay

    def set(self, delays) -> None:
        """Read at ``delays`` (samples, each ``>= line.min_delay``) in the block the line was
        just ``advance``d to. Host side."""
        moved, first, start, size = False, self._first.values, self.line.start, self.line.size
        for row, delay in enumerate(delays):
            if delay != self._delays[row]:  # new taps only when the delay moved
                self._offsets[row], self._weights.values[row, 0] = fixed_taps(self.line.interpolation, delay)
                self._delays[row], moved = delay, True
            first[row, 0] = (start + self._offsets[row]) % size
        self._first.commit()
        if moved:
            self._weights.commit()

    def read(self, begin: int, frames: int) -> torch.Tensor:
        """The block's samples ``begin .. begin + frames - 1`` at each delay, as a
        ``(channels, count, frames)`` view into an internal buffer."""
        channels, count, taps = self.line.channels, self._first.shape[0], self.line.taps
        span = frames + taps - 1
        index = self._index[: count * span].view(count, span)
        torch.add(self._first.tensor, self._steps[begin : begin + span], out=index).remainder_(self.line.size)
        samples = self._samples[: channels * count * span]
        torch.index_select(self.line.buffer, 1, index.view(-1), out=samples.view(channels, -1))
        windows = samples.view(channels, count, span).unfold(2, taps, 1)  # (channels, count, frames, P)
        products = self._products[: channels * count * frames * taps].view(channels, count, frames, taps)
        torch.mul(windows, self._weights.tensor, out=products)
        return torch.sum(products, dim=3, out=self._out[: channels * count * frames].view(channels, count, frames))
