"""One uniformly partitioned overlap-save section (UPOLS) with a frequency-domain delay line.

Partition ``j`` of a segment holds taps ``[s + jQ, s + (j+1)Q)`` and its spectrum
``H_j = rfft(taps, 2Q)``. Input block ``b`` (``Q`` samples) enters the delay line as
``X_b = rfft(x[(b-1)Q : (b+1)Q])``. Overlap-save: the last ``Q`` samples of
``irfft(H_j X_b)`` are partition ``j``'s contribution from the input up to block ``b`` to the
``Q`` outputs ``j Q + s`` samples later. Result ``m`` (the one that block ``m`` being complete
makes possible) is ``Y_m = sum_j H_j X_{m - lag - j}``, due at output block ``m + s/Q - lag``.

Layout. The delay line is a ring of ``S`` slots, ``X[b % S]`` of shape ``(C, F)``, ``F = Q+1``
bins; ``H`` has shape ``(K, 1 or C, F)`` (a mono IR broadcasts over channels) with partitions
reversed (``Hr[q] = H[K-1-q]``), so that consecutive blocks meet consecutive partitions: a range
of partitions is one or two slices (two when the ring wraps). The multiply-add is
``mul(X slice, Hr slice, out=tmp)`` then ``sum(tmp, 0, out=...)``: measured on CPU this runs at
~1 ns per complex element for any shape, where a batched matmul over bins pays ~0.2 us per bin
for short ranges. A segment computed whole every tick keeps ``Hr`` doubled, so that the whole
ring meets one slice ``Hr2[a : a+K]`` whatever the ring position: fixed shapes.

``RingSegment`` is the whole-segment case for a CUDA graph: the ring's write slot and the
rotation of the partitions against it come from a device tensor; its transforms are always
``torch.fft`` (see its docstring).

Transforms. ``torch.fft`` on CUDA. On CPU, where every op costs microseconds of overhead and
torch's MKL FFT builds a plan per call: a whole segment with ``2Q <= 256`` does both transforms
as one GEMM each with precomputed DFT matrices (``dft_matrices``); FFTs of ``2Q >= 4096`` go
through ``scipy.fft`` on numpy views of the same memory (63 us for a 16384-point rfft here,
torch 217 us); sizes between stay in torch, which measured faster inside a block.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import torch

from . import fused, fused_spectra
from .nonuniform import Seg

_DFT_MAX = 256  # CPU: transforms of a whole segment up to this size as GEMMs
_SCIPY_FFT_MIN = 4096  # CPU FFT sizes from which scipy.fft beats torch.fft (in a block)
_TMP_ELEMS = {"cpu": 1 << 17, "cuda": 1 << 22}  # complex elements of multiply-add scratch


def partition_spectra(h: np.ndarray, start: int, Q: int, K: int) -> np.ndarray:
    """``H_j = rfft(taps [start + jQ, start + (j+1)Q), 2Q)`` for ``j < K``: complex
    ``(K, rows, Q + 1)`` from float64 taps ``h`` ``(rows, T)`` (zeros past the IR's end)."""
    rows = h.shape[0]
    full = np.zeros((rows, K * Q))
    taps = h[:, start:start + K * Q]
    full[:, :taps.shape[1]] = taps
    padded = np.zeros((rows, K, 2 * Q))
    padded[:, :, :Q] = full.reshape(rows, K, Q)
    return np.fft.rfft(padded, axis=-1).transpose(1, 0, 2)


class Segment:
    """Runtime state of one segment (see ``nonuniform.Seg`` for the layout fields).

    Args:
        h: float64 taps ``(rows, T)``.
        seg: where the segment lies in the IR.
        channels: signal channels ``C``.
        units: ``(kind, lo, hi, offset)`` work units of one result (``nonuniform.spread``);
            ignored when ``seg.ratio == 1`` (everything happens at the tick).
        device: torch device.
    """

    def __init__(self, h: np.ndarray, seg: Seg, channels: int, units, device) -> None:
        rows, T = h.shape
        Q, K = seg.size, seg.count
        self.seg, self.Q, self.K, self.R, self.lag = seg, Q, K, seg.ratio, seg.lag
        self.whole = seg.ratio == 1
        if self.whole and self.lag:
            raise ValueError(f"a segment computed every tick must start at its own size, "
                             f"got start {seg.start}, size {Q}")
        self.C = C = channels
        Fb = Q + 1
        self.S = K + self.lag + (0 if self.whole else 1)
        spec = partition_spectra(h, seg.start, Q, K)[::-1]  # (K, rows, F), reversed
        if self.whole:
            spec = np.concatenate([spec, spec], axis=0)
        cplx = torch.complex64
        self.H = torch.tensor(np.ascontiguousarray(spec), dtype=cplx, device=device)
        self.X = torch.zeros(self.S, C, Fb, dtype=cplx, device=device)
        self.Xs = list(self.X.unbind(0))
        self.y = torch.zeros(C, 2 * Q, device=device)
        self.y_tail = self.y[:, Q:]
        # Large FFTs on CPU go through scipy.fft on numpy views of the same memory: torch's MKL
        # path builds a new plan per call (217 us for one 16384-point rfft here, scipy 63 us);
        # small ones stay in torch, whose per-call overhead is lower in a sequence of ops.
        self.cpu = torch.device(device).type == "cpu" and 2 * Q >= _SCIPY_FFT_MIN
        if self.cpu:
            self.Xs_np = [x.numpy() for x in self.Xs]
        self.units = [] if self.whole else list(units)
        per = max([u[2] - u[1] for u in self.units if u[0] == "mac"] + [1])
        if self.whole:  # chunks of the whole ring, each within the scratch budget
            budget = _TMP_ELEMS.get(torch.device(device).type, 1 << 17)
            per = max(1, min(K, budget // (C * Fb)))
            self.chunks = [(a, min(a + per, K)) for a in range(0, K, per)]
        self.tmp = torch.zeros(per, C, Fb, dtype=cplx, device=device)
        self.acc = torch.zeros(2, C, Fb, dtype=cplx, device=device)  # results m even / odd
        self.accs = list(self.acc.unbind(0))
        if self.whole and len(self.chunks) == 1:  # every rotation of Hr2 as a ready view
            self.Hrot = [self.H[a:a + K] for a in range(K)]
        self.scr = torch.zeros(C, Fb, dtype=cplx, device=device)
        # Small whole segments on CPU: the transforms as GEMMs with DFT matrices (see dft_matrices)
        self.dft = self.whole and torch.device(device).type == "cpu" and 2 * Q <= _DFT_MAX
        if self.dft:
            wf, wi = dft_matrices(Q)
            self.Wf = torch.tensor(wf, dtype=torch.float32, device=device)
            self.Wi = torch.tensor(wi, dtype=torch.float32, device=device)
            self.Xr = [torch.view_as_real(x).view(C, 2 * Fb) for x in self.Xs]
            self.acc_r = torch.view_as_real(self.acc[0]).view(C, 2 * Fb)
            self.tail = torch.zeros(C, Q, device=device)

    def reset(self) -> None:
        self.X.zero_()
        self.acc.zero_()

    # -- work units ------------------------------------------------------------------------
    def fft(self, window: torch.Tensor, c0: int, c1: int, m: int) -> None:
        """Block ``m`` into the delay line; ``window``: input ``[(m-1)Q, (m+1)Q)``."""
        if self.cpu:
            dst = self.Xs_np[m % self.S]
            if c0 == 0 and c1 == self.C:
                dst[...] = scipy.fft.rfft(window.numpy(), axis=-1)
            else:
                dst[c0:c1] = scipy.fft.rfft(window[c0:c1].numpy(), axis=-1)
            return
        dst = self.Xs[m % self.S]
        if c0 == 0 and c1 == self.C:
            torch.fft.rfft(window, out=dst)
        else:
            torch.fft.rfft(window[c0:c1], out=dst[c0:c1])

    def _irfft_add(self, acc: torch.Tensor, ring_block: torch.Tensor) -> None:
        """``ring_block += last Q samples of irfft(acc)`` (rows of ``acc`` = rows of block)."""
        Q = self.Q
        if self.cpu:
            y = scipy.fft.irfft(acc.numpy(), n=2 * Q, axis=-1)
            ring_block.add_(torch.from_numpy(y[:, Q:]))
        elif acc.shape[0] == self.C:
            torch.fft.irfft(acc, n=2 * Q, out=self.y)
            ring_block.add_(self.y_tail)
        else:
            y = self.y[:acc.shape[0]]
            torch.fft.irfft(acc, n=2 * Q, out=y)
            ring_block.add_(y[:, Q:])

    def mac(self, j0: int, j1: int, m: int) -> None:
        """``acc[m % 2] (+)= sum_{j0 <= j < j1} H_j X_{m - lag - j}`` (``=`` for ``j0 == 0``)."""
        S, n = self.S, j1 - j0
        b_lo = m - self.lag - j1 + 1  # oldest block used, meets partition j1 - 1
        q = self.K - j1  # reversed index of partition j1 - 1
        lo = b_lo % S
        n1 = min(n, S - lo)
        tmp = self.tmp[:n]
        torch.mul(self.X[lo:lo + n1], self.H[q:q + n1], out=tmp[:n1])
        if n1 < n:
            torch.mul(self.X[:n - n1], self.H[q + n1:q + n], out=tmp[n1:])
        self._sum(tmp, self.accs[m % 2], j0 == 0)

    def _sum(self, tmp: torch.Tensor, acc: torch.Tensor, first: bool) -> None:
        if first:
            torch.sum(tmp, 0, out=acc)
        else:
            torch.sum(tmp, 0, out=self.scr)
            acc.add_(self.scr)

    def ifft(self, ring_block: torch.Tensor, c0: int, c1: int, m: int) -> None:
        """Add result ``m``'s channels ``c0:c1`` to ``ring_block`` (``(C, Q)`` ring view)."""
        acc = self.accs[m % 2]
        if c0 == 0 and c1 == self.C:
            self._irfft_add(acc, ring_block)
        else:
            self._irfft_add(acc[c0:c1], ring_block[c0:c1])

    def whole_tick(self, window: torch.Tensor, m: int, extra: torch.Tensor | None) -> torch.Tensor:
        """FFT, all partitions, inverse FFT for result ``m`` (a segment with ratio 1).

        Returns the result's ``Q`` output samples ``(C, Q)`` plus ``extra`` if given: a fresh
        array (scipy path) or a buffer overwritten at the next tick.
        """
        K = self.K
        if self.dft:
            torch.matmul(window, self.Wf, out=self.Xr[m % K])
        else:
            self.fft(window, 0, self.C, m)
        a = (K - 1 - m) % K  # Hr2[a + i] = Hr[(K-1-m+i) % K] meets slot i
        acc = self.accs[0]
        if len(self.chunks) == 1:
            torch.mul(self.X, self.Hrot[a], out=self.tmp)
            torch.sum(self.tmp, 0, out=acc)
        else:
            for c0, c1 in self.chunks:
                tmp = self.tmp[:c1 - c0]
                torch.mul(self.X[c0:c1], self.H[a + c0:a + c1], out=tmp)
                self._sum(tmp, acc, c0 == 0)
        if self.dft:
            if extra is None:
                return torch.matmul(self.acc_r, self.Wi, out=self.tail)
            return torch.addmm(extra, self.acc_r, self.Wi, out=self.tail)
        if self.cpu:
            tail = torch.from_numpy(scipy.fft.irfft(acc.numpy(), n=2 * self.Q, axis=-1))[:, self.Q:]
        else:
            torch.fft.irfft(acc, n=2 * self.Q, out=self.y)
            tail = self.y_tail
        if extra is not None:
            tail.add_(extra)
        return tail


def dft_matrices(Q: int) -> tuple[np.ndarray, np.ndarray]:
    """Real matrices for the transforms of FFT size ``N = 2Q``, float64.

    ``Wf`` ``(N, 2F)``: ``x @ Wf`` is ``rfft(x)`` with real and imaginary parts interleaved,
    ``Wf[n, 2f] = cos(2 pi f n / N)``, ``Wf[n, 2f+1] = -sin(2 pi f n / N)``.
    ``Wi`` ``(2F, Q)``: ``Y @ Wi`` is the last ``Q`` samples of ``irfft(Y, N)``: for
    ``n = Q + t``, ``y[n] = sum_f c_f (Re Y_f cos(2 pi f n / N) - Im Y_f sin(2 pi f n / N)) / N``
    with ``c_f = 1`` at DC and Nyquist, 2 between.
    """
    N, F = 2 * Q, Q + 1
    f = np.arange(F)
    ang = 2 * np.pi * np.outer(np.arange(N), f) / N
    wf = np.empty((N, 2 * F))
    wf[:, 0::2], wf[:, 1::2] = np.cos(ang), -np.sin(ang)
    c = np.full(F, 2.0)
    c[0] = c[-1] = 1.0
    ang = 2 * np.pi * np.outer(f, Q + np.arange(Q)) / N
    wi = np.empty((2 * F, Q))
    wi[0::2], wi[1::2] = c[:, None] * np.cos(ang) / N, -c[:, None] * np.sin(ang) / N
    return wf, wi


class RingSegment:
    """``K`` partitions of ``Q`` taps from tap ``start``, all computed at every tick, with the
    same kernels and arguments at every tick (a CUDA graph can replay it).

    The delay line ``X`` holds the spectrum of input block ``b`` at slot ``b % K``; the slot
    comes from a device tensor. The tick that completes block ``b`` computes
    ``Y = sum_s X[s] H[(b - s) % K]``: the partitions' spectra ``H`` ``(F, rows, K)`` are
    gathered into ring order (one copy of ``H``: small for a mono IR), then one batched matrix
    product over the bins and IR rows reads the whole ring once. Channel ``c = g * rows + r``
    (group ``g``) uses IR row ``r``; ``X`` is laid out ``(F, rows, groups, K)``, partitions
    last, which that product reads without a copy: ``(F rows, groups, K) @ (F rows, K, 1)``.

    Args:
        h: float64 taps ``(rows, T)``, ``rows`` dividing ``channels``.
        start, Q, K: where the partitions lie in the IR.
        channels: signal channels ``C``.
        device: torch device.
    """

    def __init__(self, h: np.ndarray, start: int, Q: int, K: int, channels: int, device) -> None:
        rows, C, F = h.shape[0], channels, Q + 1
        if C % rows:
            raise ValueError(f"{rows} IR rows do not divide {C} channels")
        groups = C // rows
        self.Q, self.K = Q, K
        cplx = dict(dtype=torch.complex64, device=device)
        # (F, rows, K), with the inverse transform's 1 / 2Q: the irfft then runs unscaled (on a
        # GPU one kernel fewer per block)
        spec = partition_spectra(h, start, Q, K).transpose(2, 1, 0) / (2 * Q)
        self.H = torch.tensor(np.ascontiguousarray(spec), **cplx)
        self.H_ring = torch.empty_like(self.H)
        self.X = torch.zeros(F, rows, groups, K, **cplx)
        self._acc = torch.zeros(F, rows, groups, **cplx)
        self._lags = torch.arange(K, 0, -1, device=device)  # K - s: (slot + K - s) % K = b - s
        self._index = torch.empty(K, dtype=torch.long, device=device)
        self._product = (self.X.view(F * rows, groups, K), self.H_ring.view(F * rows, K, 1),
                         self._acc.view(F * rows, groups, 1))
        self._spectra = self._acc.permute(2, 1, 0)  # (groups, rows, F): channel-major for irfft
        self._by_channel = torch.zeros(C, F, **cplx)  # the fused product's: contiguous for irfft
        self.fused = fused.available(device)  # the ring's entry and product in one kernel
        # Small FFT sizes: the forward transform inside that kernel, a direct DFT
        self.turns = fused_spectra.turns(2 * Q, device) if self.fused and 2 * Q <= fused_spectra.DIRECT_MAX else None

    def reset(self) -> None:
        self.X.zero_()

    def spectra(self, window: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """The fused path of ``tick`` up to the inverse transform: enter block ``b`` and return
        its result's spectra ``(C, Q + 1)`` complex64 (the same memory at every tick)."""
        source = window if self.turns is not None else torch.fft.rfft(window)  # (C, 2Q) or (C, F)
        return fused_spectra.ring_product(source, self.X, self.H, slot, self._by_channel, self.turns)

    def tick(self, window: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """Enter block ``b`` and return its result's ``Q`` output samples ``(C, Q)`` (a view
        of a fresh tensor; from a graph, the same memory at every tick).

        Args:
            window: ``(C, 2Q)`` input ``[(b-1)Q, (b+1)Q)``.
            slot: ``(1,)`` int64 device tensor, ``b % K``.
        """
        # The transforms allocate their results: with ``out=`` each costs one more copy kernel
        # on a GPU (in a graph, the results keep their addresses anyway).
        if self.fused:
            spectra = self.spectra(window, slot)
        else:
            spectrum = torch.fft.rfft(window)  # (C, F)
            groups, rows = self._spectra.shape[:2]
            self.X.index_copy_(3, slot, spectrum.view(groups, rows, -1).permute(2, 1, 0).unsqueeze(3))
            index = torch.add(self._lags, slot, out=self._index).remainder_(self.K)
            torch.index_select(self.H, 2, index, out=self.H_ring)
            ring, partitions, acc = self._product
            torch.bmm(ring, partitions, out=acc)
            spectra = self._spectra  # a permuted view: irfft copies it first
        samples = torch.fft.irfft(spectra, n=2 * self.Q, norm="forward")  # (C or groups, rows, 2Q)
        return samples.reshape(-1, 2 * self.Q)[:, self.Q:]  # a view where irfft returns it contiguous (CUDA)
