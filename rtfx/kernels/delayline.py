"""A multi-channel delay line: write blocks, read them back at integer or fractional delays.

The line is a linear buffer, not a ring: samples are written at ``now`` and ``now`` grows.
When a block would not fit, the newest ``history`` samples are copied back to the start (one
copy every ``history + max_block`` frames or so, never in the middle of a block that called
``reserve``). So every read is a plain index into the buffer, never a modulo, and reads at a
fixed delay are slices (views).

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

import torch

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


class DelayLine:
    """Delay memory for ``channels`` channels, float32 on ``device``, preallocated.

    Args:
        channels: number of channels.
        max_delay: the longest delay that will be read, in samples (fractional allowed).
        max_block: the longest block ``write`` gets.
        device: torch device.
        interpolation: one of ``INTERPOLATIONS``.
        voices: reads per output sample: ``read`` takes ``voices`` rows of positions per
            channel, ``(channels, voices * m)``, and returns their mean ``(channels, m)``.

    Timing: a read for the sample written at index ``t`` with delay ``d`` is at position
    ``t - d``; it needs the taps up to ``floor(t - d) + P/2``, so a delay of at least
    ``min_delay = P/2`` samples only touches samples already written.
    """

    def __init__(self, channels: int, max_delay: float, max_block: int, device="cpu",
                 interpolation: str = "hermite", voices: int = 1) -> None:
        if interpolation not in COEFFS:
            raise ValueError(f"interpolation = {interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
        self.interpolation = interpolation
        self.taps = len(COEFFS[interpolation])
        self.min_delay = self.taps // 2
        self.history = math.ceil(max_delay) + self.taps + 1
        self.max_block = max_block
        device = torch.device(device)
        f32, f64 = dict(device=device, dtype=torch.float32), dict(device=device, dtype=torch.float64)
        # ``_windows[c, i]`` holds the taps ``buffer[c, i - P/2 + 1 : i + P/2 + 1]``: indexed by
        # floor(position) directly (the storage starts P/2 - 1 samples before the buffer).
        lead = self.taps // 2 - 1
        storage = torch.zeros(channels, lead + 2 * self.history + max_block, **f32)
        self.buffer = storage[:, lead:]
        self._windows = storage.unfold(1, self.taps, 1)
        readers, self.voices = voices * max_block, voices
        self.channels = channels
        coeffs = torch.tensor(COEFFS[interpolation], **f32) / voices  # the voices' mean
        self._rows = tuple(coeffs)  # by power of mu
        # Flat scratch, viewed as (channels, m, ...) per read so that every view is contiguous.
        size = channels * readers
        self._floor = torch.empty(size, **f64)
        self._index = torch.empty(size, device=device, dtype=torch.long)
        self._mu = torch.empty(size, **f32)
        self._weights = torch.empty(size * self.taps, **f32)
        self._taps = torch.empty_like(self._weights)
        # Views of the scratch by read length, made on first use (a view costs ~1.5 us).
        self._locate_views: dict[int, tuple] = {}
        self._gather_views: dict[int, tuple] = {}
        self._fixed_taps: dict[float, tuple] = {}  # by delay, for ``read_fixed``
        self.now = self.history

    def reset(self) -> None:
        """Silence the whole memory."""
        self.buffer.zero_()
        self.now = self.history

    def reserve(self, frames: int) -> None:
        """Make room for ``frames`` more samples (moves the newest ``history`` samples back)."""
        if self.now + frames > self.buffer.shape[-1]:
            keep = self.history
            self.buffer[:, :keep].copy_(self.buffer[:, self.now - keep : self.now])
            self.now = keep

    def write(self, x: torch.Tensor) -> None:
        """Append a block ``(channels, frames)``, ``frames <= max_block``."""
        frames = x.shape[-1]
        self.reserve(frames)
        self.buffer[:, self.now : self.now + frames].copy_(x)
        self.now += frames

    def read_fixed(self, start: int, delay: float, frames: int, out: torch.Tensor) -> torch.Tensor:
        """Samples ``start + i - delay`` for ``i < frames``: a weighted sum of ``P`` slices.

        Args:
            start: buffer index of the first output's time (e.g. ``now - frames`` after a
                write, or ``now`` before one).
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
        first = math.floor(-delay)
        weights = tap_weights(self.interpolation, -delay - first)
        first -= self.taps // 2 - 1
        taps = tuple((first + k, w) for k, w in enumerate(weights) if w != 0.0)
        if len(self._fixed_taps) >= 8:  # a few delays in use at a time (crossfades)
            self._fixed_taps.clear()
        self._fixed_taps[delay] = taps
        return taps

    def locate(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First taps and tap weights for fractional buffer ``positions``.

        Args:
            positions: ``(channels, voices * m)`` float64 buffer positions, e.g.
                ``start + i - delay[v, i]`` (voice-major).
        Returns:
            ``index`` ``(channels, m, P)`` (the first tap's index, expanded) and ``weights``
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
        return taps_index, weights

    def _make_locate_views(self, m: int) -> tuple:
        channels, taps = self.channels, self.taps
        floor = self._floor[: channels * m].view(channels, m)
        index = self._index[: channels * m].view(channels, m, 1)
        mu = self._mu[: channels * m].view(channels, m, 1)
        weights = self._weights[: channels * m * taps].view(channels, m, taps)
        views = (floor, floor.unsqueeze(-1), index, index.expand(channels, m, taps), mu, weights)
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
        torch.gather(self._windows, 1, index, out=views[0]).mul_(weights)
        return torch.sum(views[1], dim=(1, 3), out=out)

    def read(self, positions: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Interpolated samples at fractional buffer ``positions`` ``(channels, voices * m)``
        float64, averaged over voices into ``out`` ``(channels, m)``; returns ``out``."""
        return self.gather(*self.locate(positions), out)
