"""One uniformly partitioned overlap-save section (UPOLS) with a frequency-domain delay line.

Partition ``j`` of a segment holds taps ``[s + jQ, s + (j+1)Q)`` and its spectrum
``H_j = rfft(taps, 2Q)``. Input block ``b`` (``Q`` samples) enters the delay line as
``X_b = rfft(x[(b-1)Q : (b+1)Q])``; overlap-save keeps the last ``Q`` samples of
``irfft(sum_j H_j X_{b-j})``, which are the partitions' contributions to the ``Q`` outputs
starting one block after block ``b`` ends... shifted by the segment start ``s``. Result ``m``
(the one input block ``m`` makes possible) is ``Y_m = sum_j H_j X_{m - lag - j}``.

Layout. Spectra are batched so that every multiply-add over partitions is one complex batched
matmul ``(B, M, n) @ (B, n, 1)``: for a mono IR ``B = F`` bins and ``M = C`` channels share one
``H``; for one IR per channel ``B = C F`` and ``M = 1``. The delay line is a ring of ``S`` slots
(``X[..., b % S]``); ``H`` is stored with partitions reversed so that a run of consecutive
blocks meets a run of consecutive partitions: at most two matmuls per range of partitions (one
when the ring does not wrap). A segment computed whole every tick keeps ``H`` doubled instead,
so the whole ring is one matmul against a sliding window of ``H``.
"""
from __future__ import annotations

import numpy as np
import torch

from .nonuniform import Seg


class Segment:
    """Runtime state of one segment (see ``nonuniform.Seg`` for the layout fields).

    Args:
        h: float64 taps ``(rows, T)``.
        seg: where the segment lies in the IR.
        channels: signal channels ``C``.
        units: ``(kind, lo, hi, offset)`` work units of one result, offsets in ``[0, ratio]``
            (ignored for ``ratio == 1``: everything at the tick).
        device: torch device.
    """

    def __init__(self, h: np.ndarray, seg: Seg, channels: int, units, device) -> None:
        rows, T = h.shape
        Q, K = seg.size, seg.count
        self.seg, self.Q, self.K, self.R, self.lag = seg, Q, K, seg.ratio, seg.lag
        self.whole = seg.ratio == 1
        self.C = C = channels
        self.F = Fb = Q + 1
        self.S = K + self.lag + (0 if self.whole else 1)
        if self.whole and self.lag:
            raise ValueError(f"a segment computed every tick must start at its own size, "
                             f"got start {seg.start}, size {Q}")
        # partition spectra, float64 then complex64, partitions reversed: Hr[q] = H[K-1-q]
        padded = np.zeros((rows, K, 2 * Q))
        taps = h[:, seg.start:seg.start + K * Q]
        full = np.zeros((rows, K * Q))
        full[:, :taps.shape[1]] = taps
        padded[:, :, :Q] = full.reshape(rows, K, Q)
        spec = np.fft.rfft(padded, axis=-1)[:, ::-1]  # (rows, K, F)
        if self.whole:
            spec = np.concatenate([spec, spec], axis=1)
        self.mono = rows == 1
        if self.mono:  # B = F, M = C
            hb = spec[0].T[:, :, None]  # (F, K', 1)
            B, M = Fb, C
        else:  # B = C F, M = 1
            hb = spec.transpose(0, 2, 1).reshape(C * Fb, -1)[:, :, None]
            B, M = C * Fb, 1
        cplx = torch.complex64
        self.H = torch.tensor(np.ascontiguousarray(hb), dtype=cplx, device=device)
        self.X = torch.zeros(B, M, self.S, dtype=cplx, device=device)
        self.acc = torch.zeros(2, B, M, 1, dtype=cplx, device=device)
        self.spec = torch.zeros(C, Fb, dtype=cplx, device=device)
        self.y = torch.zeros(C, 2 * Q, device=device)
        # channel-major views: Xc[c, f, slot], accc[parity][c, f]
        if self.mono:
            self.Xc = self.X.permute(1, 0, 2)
            self.accc = [a[:, :, 0].T for a in self.acc]
        else:
            self.Xc = self.X.view(C, Fb, self.S)
            self.accc = [a.view(C, Fb) for a in self.acc]
        self.units = [] if self.whole else list(units)

    def reset(self) -> None:
        self.X.zero_()
        self.acc.zero_()

    # -- work units ------------------------------------------------------------------------
    def fft(self, hist, back: int, c0: int, c1: int, m: int) -> None:
        """Block ``m`` into the delay line; ``back``: samples from block ``m``'s end to the
        newest input sample."""
        win = hist.window(back, 2 * self.Q)
        torch.fft.rfft(win[c0:c1], out=self.spec[c0:c1])
        self.Xc[c0:c1, :, m % self.S].copy_(self.spec[c0:c1])

    def mac(self, j0: int, j1: int, m: int, first: bool) -> None:
        """``acc[m % 2] (+)= sum_{j0 <= j < j1} H_j X_{m - lag - j}``."""
        acc = self.acc[m % 2]
        S, K = self.S, self.K
        b_hi = m - self.lag - j0  # newest block used
        b_lo = b_hi - (j1 - j0) + 1
        q = K - j1  # reversed index of partition j1-1 (meets block b_lo)
        lo = b_lo % S
        n1 = min(j1 - j0, S - lo)
        self._mm(self.X[:, :, lo:lo + n1], self.H[:, q:q + n1], acc, first)
        if n1 < j1 - j0:
            n2 = j1 - j0 - n1
            self._mm(self.X[:, :, :n2], self.H[:, q + n1:q + n1 + n2], acc, False)

    @staticmethod
    def _mm(a, b, acc, first: bool) -> None:
        if first:
            torch.bmm(a, b, out=acc)
        else:
            acc.baddbmm_(a, b)

    def ifft(self, ring: torch.Tensor, at: int, c0: int, c1: int, m: int) -> None:
        """Add result ``m``'s ``Q`` samples to ``ring[c0:c1, at:at+Q]``."""
        Q = self.Q
        torch.fft.irfft(self.accc[m % 2][c0:c1], n=2 * Q, out=self.y[c0:c1])
        ring[c0:c1, at:at + Q].add_(self.y[c0:c1, Q:])

    def whole_tick(self, hist, back: int, ring: torch.Tensor, at: int, m: int) -> None:
        """FFT, all partitions, inverse FFT for result ``m`` (a segment with ratio 1)."""
        C, K = self.C, self.K
        self.fft(hist, back, 0, C, m)
        a = (K - 1 - m) % K  # H2[a + i] = Hr[(K-1-m+i) % K] meets slot i
        torch.bmm(self.X, self.H[:, a:a + K], out=self.acc[0])
        self.ifft(ring, at, 0, C, 0)
