"""The far part of a long IR in a CUDA graph: large partitions, their work spread over the ticks.

A ``CaptureConvolver`` computes its whole uniform delay line (partitions of ``G`` taps) at every
tick: per tick it reads ``channels * taps * 8`` bytes of spectra. For 64 channels and a 10 s IR
that is 245 MB, ~97 us of an H100's memory bandwidth at every 128-frame block. ``FarSegment``
takes the taps from ``2Q`` on in partitions of ``Q = R G`` taps (the convolver's uniform ring
keeps ``[G, 2Q)``), so a tick reads ``R`` times less, and spreads each result's work evenly:

- Result ``m`` (input block ``m`` of ``Q`` samples complete) is ``Y_m = sum_j H_j X_{m-j}``, its
  ``Q`` samples due at output samples ``[(m+2)Q, (m+3)Q)``: the ``R`` ticks at the sample
  boundaries ``(m+1)Q + kG``, ``k < R``, lie between the block's end and that time.
- Tick ``k`` of result ``m`` does the whole work for channel group ``k`` (``C / R`` channels):
  gathers its window ``[(m-1)Q, (m+1)Q)`` from an input ring, the FFT, enters the spectrum into
  the delay line, the multiply-add over the ``K`` partitions, the inverse FFT, and stores the
  last ``Q`` samples as result ``m`` (a ring of three results).
- Every call adds the results' samples at its own positions to the output. A call holding a
  tick of result ``m`` only reads results ``m - 2`` and ``m - 1``, never the one it writes.

Every tick runs the same kernels on the same memory: the group, the slots and the stream
position are a device control (``far_at``) written by ``before_block``; the kernels are
``fused_far``'s (Triton), also for calls shorter than a block. The torch path here (eager:
host indices, allocating) is the kernels' reference; ``far_ratio`` only picks a far segment
where the kernels run.
"""
from __future__ import annotations

import numpy as np
import torch

from ..controls import Control
from . import fused, fused_far
from .upols import partition_spectra

MAX_RATIO = 32  # the most ticks one result's work is spread over
MIN_BYTES = 16 << 20  # uniform delay lines smaller than this (bytes per tick) stay whole


def far_ratio(taps: int, partition: int, channels: int) -> int:
    """``R`` for a far segment of an IR of ``taps`` at head partition ``partition``, or 0 where
    the uniform ring is small (under ``MIN_BYTES`` a tick) or too short for one. ``R`` is the
    largest power of two dividing ``channels``, at most ``MAX_RATIO``."""
    ratio = min(MAX_RATIO, channels & -channels)
    if ratio < 2 or channels * taps * 8 < MIN_BYTES or taps < 4 * ratio * partition:
        return 0
    return ratio


class FarSegment:
    """Taps ``[2Q, T)`` of ``h`` ``(rows, T)`` (float64, ``rows`` dividing ``channels``) in
    partitions of ``Q = ratio * partition``; see the module docstring.

    Per call: ``before_block(position, frames)`` (host: ``position`` is the stream position
    of the call's first sample), then ``compute(x)`` with the call's input ``(C, n)`` and,
    once the rest of the output is in ``out`` ``(C, n)``, ``add(samples, out)``.
    """

    def __init__(self, h: np.ndarray, partition: int, ratio: int, channels: int, device) -> None:
        rows, taps = h.shape
        self.G, self.R = partition, ratio
        self.Q = Q = partition * ratio
        self.K = K = -(-(taps - 2 * Q) // Q)
        if K < 1 or channels % ratio:
            raise ValueError(f"a far segment of ratio {ratio} needs more than {2 * Q} taps and channels "
                             f"divisible by {ratio}, got {taps} taps, {channels} channels")
        self.per = channels // ratio
        F = Q + 1
        self.rows = rows
        # (rows, K, F), with the inverse transform's 1 / 2Q (the irfft runs unscaled)
        spec = partition_spectra(h, 2 * Q, Q, K).transpose(1, 0, 2) / (2 * Q)
        cplx = dict(dtype=torch.complex64, device=device)
        self.H = torch.tensor(np.ascontiguousarray(spec), **cplx)
        self.X = torch.zeros(channels, K, F, **cplx)  # input spectra, block b at slot b % K
        self.inputs = torch.zeros(channels, 4 * Q, device=device)  # input ring, sample n at n % 4Q
        self.results = torch.zeros(channels, 3 * Q, device=device)  # result m at (m % 3) Q
        #: [position, group, slot, window start, result slot] of the call (int64; positions are samples)
        self.far_at = Control(5, device, torch.int64)
        self.window = torch.zeros(self.per, 2 * Q, device=device)  # the tick's group's input
        self.spectrum = torch.zeros(self.per, F, **cplx)  # ... and its result's spectrum
        self.fused = fused.available(device)
        self._due = False
        self._steps = torch.arange(2 * Q, device=device)  # sample offsets (a call: n <= G < 2Q)
        self._lags = torch.arange(0, -K, -1, device=device)

    def before_block(self, position: int, frames: int) -> None:
        """Host side of a call of ``frames`` from stream sample ``position``: whether it holds
        a tick (a ``G`` boundary), and if so which group of which result it computes."""
        G, R, Q, values = self.G, self.R, self.Q, self.far_at.values
        self._due = (position + frames) // G > position // G
        values[0] = position
        if self._due:
            tick = position // G + 1
            m = tick // R - 1  # the result this tick works on; its group: tick % R
            values[1], values[2], values[3], values[4] = tick % R, m % self.K, (m - 1) * Q, m % 3
        self.far_at.commit()

    def compute(self, x: torch.Tensor) -> torch.Tensor | None:
        """Enter the call's input ``(C, n)``; at a tick, compute this tick's group of its result.
        Returns the group's inverse transform ``(C/R, 2Q)`` for ``add`` (None without a tick)."""
        if self.fused:
            fused_far.enter(x, self.inputs, self.far_at.tensor, self.window if self._due else None)
            if not self._due:
                return None
            fused_far.multiply_add(torch.fft.rfft(self.window), self.X, self.H, self.far_at.tensor, self.spectrum)
            return torch.fft.irfft(self.spectrum, n=2 * self.Q, norm="forward")
        return self._compute_torch(x)

    def add(self, samples: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
        """Store a tick's samples as its group's result; add the results due to ``out``."""
        if self.fused:
            return fused_far.add(samples, self.results, self.far_at.tensor, self.Q, out)
        return self._add_torch(samples, out)

    def reset(self) -> None:
        for state in (self.X, self.inputs, self.results):
            state.zero_()

    # -- the torch path (eager: indices from the host) ----------------------------------------
    def _values(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.far_at.values)

    def _compute_torch(self, x: torch.Tensor) -> torch.Tensor | None:
        position, group, slot, start, _ = self._values()
        L, n = self.inputs.shape[1], x.shape[1]
        self.inputs.index_copy_(1, (self._steps[:n] + position) % L, x)
        if not self._due:
            return None
        channels = slice(group * self.per, (group + 1) * self.per)
        window = self.inputs[channels].index_select(1, (self._steps[: 2 * self.Q] + start) % L)
        self.X[channels, slot] = torch.fft.rfft(window)
        ring = self.X[channels].index_select(1, (self._lags + slot) % self.K)  # X_{m-j} for j < K
        rows = torch.arange(channels.start, channels.stop, device=x.device) % self.rows
        spectrum = (ring * self.H[rows]).sum(1)
        return torch.fft.irfft(spectrum, n=2 * self.Q, norm="forward")

    def _add_torch(self, samples: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
        position, group, _, _, result = self._values()
        Q = self.Q
        if samples is not None:
            self.results[group * self.per : (group + 1) * self.per, result * Q : (result + 1) * Q] = samples[:, Q:]
        n = out.shape[1]
        sample = self._steps[:n] + position
        places = (sample // Q + 1) % 3 * Q + sample % Q  # result n // Q - 2
        return out.add_(self.results.index_select(1, places))
