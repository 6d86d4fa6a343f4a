"""Streaming polyphase up- and down-sampling by 2, 4 or 8, state carried across blocks.

One linear-phase lowpass ``h`` (Kaiser window, ``N = K*L + 1`` taps at the high rate, pass band
to ``0.42 fs``, stop band from ``0.5 fs`` at 100 dB, ``fs`` the base rate) serves as the
anti-imaging filter after zero-stuffing and as the anti-aliasing filter before decimation.
Zero-phase filtering is impossible live, so each filter delays by ``(N-1)/2 = K*L/2`` high-rate
samples; up then down delays by ``K*L`` high-rate samples = ``K`` base frames (``latency``).
``K`` depends only on the transition band in base-rate terms: 77 frames (1.6 ms at 48 kHz)
for every factor.

Up (``v`` at the high rate, ``x`` at the base rate, phase ``p < L``)::

    v[L t + p] = L * sum_j h[p + L j] x[t - j]          j = 0..K

With the window ``W = x[t0-K : t0+n]`` this is ``v_block = W @ U``, ``U[i, L t + p] =
L h[p + L (K - i + t)]`` (0 outside ``[0, N)``): a Toeplitz matrix whose top-left corner is
the matrix of any shorter block. Down (``y[t] = sum_k h[k] v[L t - k]``) with the window
``V = v[L t0 - K L : L (t0 + n)]`` is ``y = V @ D``, ``D[r, t] = h[K L + L t - r]``.
Both are one GEMM per sub-block of up to ``SUBBLOCK`` base frames (measured on the 2-core dev
CPU, 2 ch, 128 frames, 8x: 10 us up, 9 us down; conv1d with a stride took 65-110 us).
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import torch

from .fir import InputHistory

FACTORS = (1, 2, 4, 8)
PASS_EDGE = 0.42  # pass-band edge, fraction of the base rate
STOP_EDGE = 0.5  # stop-band edge (the base Nyquist), fraction of the base rate
STOP_DB = 100.0  # stop-band attenuation of the Kaiser design
SUBBLOCK = 128  # base frames per GEMM (matrices under 1 MiB at 8x)


def check_factor(factor: int, owner: str = "oversample") -> int:
    """``factor`` if it is one of ``FACTORS``, else ``ValueError`` naming ``owner``."""
    if factor not in FACTORS or isinstance(factor, bool):
        raise ValueError(f"{owner} = {factor!r}; choose one of {', '.join(map(str, FACTORS))}")
    return int(factor)


def halfband_taps(factor: int) -> np.ndarray:
    """The float64 lowpass at ``factor`` times the base rate: ``K * factor + 1`` taps, DC gain 1.

    ``K`` is rounded up to an even number, so the filter is symmetric about a whole base frame.
    """
    width = (STOP_EDGE - PASS_EDGE) / factor  # transition width, fraction of the high rate
    numtaps, beta = scipy.signal.kaiserord(STOP_DB, 2 * width)
    k = -(-(numtaps - 1) // factor)
    k += k % 2
    cutoff = (PASS_EDGE + STOP_EDGE) / 2 / factor  # fraction of the high rate
    h = scipy.signal.firwin(k * factor + 1, 2 * cutoff, window=("kaiser", beta))
    return h / h.sum()


def latency_frames(factor: int) -> int:
    """Base-rate frames by which up- then down-sampling by ``factor`` delays the signal."""
    return 0 if factor == 1 else (len(halfband_taps(factor)) - 1) // factor


class _Toeplitz:
    """A matrix built for ``sub`` frames and its top-left corners for every shorter block."""

    def __init__(self, matrix: np.ndarray, rows_per_frame: int, cols_per_frame: int, sub: int, device):
        self.matrix = torch.tensor(matrix, dtype=torch.float32, device=device)
        self.rows_fixed = matrix.shape[0] - rows_per_frame * sub
        self.corners = [self.matrix[: self.rows_fixed + rows_per_frame * k, : cols_per_frame * k]
                        for k in range(sub + 1)]


class Oversampler:
    """Up- and down-sampling by ``factor`` (2, 4 or 8) on ``(channels, frames)`` float32 blocks.

    Args:
        factor: the oversampling ratio ``L``.
        channels: number of channels.
        max_block: the most base-rate frames one call gets.
        device: torch device.

    ``up(x)`` takes ``(C, n)`` and returns ``(C, n*L)``; ``down(v)`` takes ``(C, n*L)`` and
    returns ``(C, n)``; both return views into internal buffers, valid until the next call of
    the same method. ``down(up(x))`` is ``x`` low-passed and delayed by ``latency`` frames.
    Nothing is allocated after construction; call from one thread.
    """

    def __init__(self, factor: int, channels: int, max_block: int, device="cpu") -> None:
        L = self.factor = check_factor(factor)
        if L == 1:
            raise ValueError("Oversampler: factor 1 needs no oversampler")
        h = halfband_taps(L)
        K = self.latency = (len(h) - 1) // L
        self.sub = S = min(SUBBLOCK, max_block)
        i = np.arange(K + S)[:, None]
        col = np.arange(S * L)[None, :]
        tap = col % L + L * (K - i + col // L)
        self._up = _Toeplitz(np.where((tap >= 0) & (tap < len(h)), L * h[np.clip(tap, 0, len(h) - 1)], 0.0),
                             1, L, S, device)
        r = np.arange(K * L + S * L)[:, None]
        tap = K * L + L * np.arange(S)[None, :] - r
        self._down = _Toeplitz(np.where((tap >= 0) & (tap < len(h)), h[np.clip(tap, 0, len(h) - 1)], 0.0),
                               L, 1, S, device)
        self._x_hist = InputHistory(channels, K, max_block, device)
        self._v_hist = InputHistory(channels, K * L, max_block * L, device)
        self._v = torch.zeros(channels, max_block * L, device=device)
        self._y = torch.zeros(channels, max_block, device=device)

    def up(self, x: torch.Tensor) -> torch.Tensor:
        """``(C, n)`` base-rate block -> ``(C, n*L)`` high-rate block (anti-imaged)."""
        n, L, K = x.shape[-1], self.factor, self.latency
        self._x_hist.append(x)
        window = self._x_hist.window(0, K + n)
        for start in range(0, n, self.sub):
            k = min(self.sub, n - start)
            torch.matmul(window[:, start:start + K + k], self._up.corners[k],
                         out=self._v[:, start * L:(start + k) * L])
        return self._v[:, :n * L]

    def down(self, v: torch.Tensor) -> torch.Tensor:
        """``(C, n*L)`` high-rate block -> ``(C, n)`` base-rate block (anti-aliased)."""
        L = self.factor
        n = v.shape[-1] // L
        self._v_hist.append(v)
        window = self._v_hist.window(0, self.latency * L + n * L)
        for start in range(0, n, self.sub):
            k = min(self.sub, n - start)
            torch.matmul(window[:, start * L:(start + k + self.latency) * L], self._down.corners[k],
                         out=self._y[:, start:start + k])
        return self._y[:, :n]

    def reset(self) -> None:
        """Clear both filter histories."""
        self._x_hist.reset()
        self._v_hist.reset()
