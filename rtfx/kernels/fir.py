"""Direct-form streaming FIR: short filters, and the head of the partitioned convolvers.

The output of a block of ``n`` frames starting at input sample ``t0`` is
``y[t] = sum_{k<T} h[k] x[t-k]``. With the last ``T-1`` input samples kept in front of the block,
the window ``W = x[t0-T+1 : t0+n]`` (``T-1+n`` samples) gives::

    y = W @ M        M[i, t] = h[T-1+t-i]   (0 where T-1+t-i leaves [0, T))

``M`` is a ``(T-1+n, n)`` Toeplitz matrix whose top-left corner is the matrix of any shorter
block, so one matrix built for ``b`` frames serves every call: one GEMM per ``b`` frames, written
in place with ``out=``. ``b`` is the largest power of two whose matrix stays cache-sized (1 MiB
on CPU). Where even a small ``b`` would not fit (thousands of taps), a grouped ``conv1d`` does the
same sum. A mono IR (one row of taps) shares one matrix over all channels: ``(C, L) @ (L, b)``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_TOEPLITZ_BYTES = {"cpu": 1 << 20, "cuda": 64 << 20}  # budget for the precomputed matrix
_MIN_SUBBLOCK = 8  # below this many frames per GEMM, conv1d is the better tool


def as_taps(taps, channels: int) -> np.ndarray:
    """Check taps and return them as float64 ``(rows, T)``, rows 1 (mono) or ``channels``.

    Raises ``ValueError`` (with the numbers) for empty taps, non-finite taps, a row count other
    than 1 or ``channels``, or ``channels < 1``.
    """
    if int(channels) != channels or channels < 1:
        raise ValueError(f"channels must be a whole number >= 1, got {channels}")
    if isinstance(taps, torch.Tensor):
        taps = taps.detach().cpu().numpy()
    h = np.array(taps, dtype=np.float64, copy=True)
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2:
        raise ValueError(f"taps must have shape (T,) or (channels, T), got shape {h.shape}")
    if h.shape[1] == 0:
        raise ValueError(f"taps are empty (shape {h.shape}); an FIR needs at least 1 tap")
    if h.shape[0] not in (1, channels):
        raise ValueError(f"taps have {h.shape[0]} rows for {channels} channels; "
                         f"give 1 row (same filter on every channel) or {channels}")
    bad = ~np.isfinite(h)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"taps hold {int(bad.sum())} non-finite value(s) "
                         f"(first at row {row}, tap {col}: {h[row, col]})")
    return h


def check_max_block(max_block: int) -> int:
    if int(max_block) != max_block or max_block < 1:
        raise ValueError(f"max_block must be a whole number of frames >= 1, got {max_block}")
    return int(max_block)


def check_block(x: torch.Tensor, channels: int, max_block: int) -> int:
    """Return the frame count of ``x`` after checking its shape (no device sync)."""
    if x.dim() != 2 or x.shape[0] != channels or not 1 <= x.shape[1] <= max_block:
        raise ValueError(f"block must have shape ({channels}, n) with 1 <= n <= {max_block}, "
                         f"got {tuple(x.shape)}")
    return x.shape[1]


class InputHistory:
    """The last ``keep`` input samples, then the newest block, in one linear buffer.

    Blocks are appended; when a block would not fit, the last ``keep`` samples move to the front
    (a copy of ``keep`` samples per ``size - 2*keep`` or more appended ones; source and
    destination never overlap since ``size >= 2*keep + max_block``). So any window of up to
    ``keep + n`` samples ending at or before the newest sample is one contiguous view.
    """

    def __init__(self, channels: int, keep: int, max_block: int, device) -> None:
        self.keep = keep
        self.size = 2 * keep + max(4 * max_block, 4096)
        self.buf = torch.zeros(channels, self.size, device=device)
        self.end = keep  # buffer index one past the newest sample; zeros before it = silence
        self._views: dict[tuple[int, int], torch.Tensor] = {}

    def append(self, x: torch.Tensor) -> None:
        n = x.shape[1]
        if self.end + n > self.size:
            k = self.keep
            if k:
                self.buf[:, :k].copy_(self.buf[:, self.end - k:self.end])
            self.end = k
        self.end += n
        self.window(0, n).copy_(x)

    def window(self, back: int, length: int) -> torch.Tensor:
        """``length`` samples ending ``back`` samples before the newest one's successor.

        Views are cached by position (making one costs ~1.5 us of the ~30 us a block costs);
        a steady stream of equal blocks cycles through a few hundred of them. The cache is
        bounded, oldest entry out first (one at a time: no spike from freeing many).
        """
        key = (self.end - back, length)
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= 4096:
                del self._views[next(iter(self._views))]
            e = key[0]
            view = self._views[key] = self.buf[:, e - length:e]
        return view

    def reset(self) -> None:
        self.buf.zero_()
        self.end = self.keep


class ShiftedHistory:
    """``InputHistory`` with every sample at a fixed place, for a CUDA graph (capture mode).

    The newest sample is always ``buf[:, -1]``: ``append`` moves the last ``keep`` samples and
    the block, joined in a scratch buffer, to the end of ``buf`` (two fixed copies of
    ``keep + n`` samples), so every block of ``n`` frames runs the same kernels on the same
    memory and ``window(back, length)`` is the same view on every call.
    """

    def __init__(self, channels: int, keep: int, max_block: int, device) -> None:
        self.keep = keep
        self.size = keep + max_block
        self.buf = torch.zeros(channels, self.size, device=device)
        self._joined = torch.zeros(channels * self.size, device=device)

    def append(self, x: torch.Tensor) -> None:
        channels, n = x.shape
        joined = self._joined[:channels * (self.keep + n)].view(channels, self.keep + n)
        torch.cat((self.buf[:, self.size - self.keep:], x), 1, out=joined)
        self.buf[:, self.size - self.keep - n:].copy_(joined)

    def window(self, back: int, length: int) -> torch.Tensor:
        """``length`` samples ending ``back`` samples before the newest one's successor."""
        return self.buf[:, self.size - back - length:self.size - back]

    def reset(self) -> None:
        self.buf.zero_()


def input_history(channels: int, keep: int, max_block: int, device, capture: bool = False):
    """An ``InputHistory``, or with ``capture`` a ``ShiftedHistory`` (same interface)."""
    return (ShiftedHistory if capture else InputHistory)(channels, keep, max_block, device)


class DirectCore:
    """``y = sum_k h[k] x[t-k]`` over a window that carries ``T-1`` samples of history.

    Args:
        h: float64 taps ``(rows, T)``, rows 1 or ``channels``.
        channels: number of channels of the signal.
        max_block: the most output frames one call computes.
        device: torch device.
    """

    def __init__(self, h: np.ndarray, channels: int, max_block: int, device) -> None:
        rows, T = h.shape
        self.T = T
        self.mono = rows == 1
        self.sub = self.subblock(rows, T, max_block, device)
        if not self.sub:
            w = np.ascontiguousarray(np.broadcast_to(h[:, ::-1], (channels, T)))
            self.weight = torch.tensor(w, dtype=torch.float32, device=device).unsqueeze(1)
        else:
            L = T - 1 + self.sub
            idx = T - 1 + np.arange(self.sub)[None, :] - np.arange(L)[:, None]
            ok = (idx >= 0) & (idx < T)
            m = np.where(ok[None], h[:, np.clip(idx, 0, T - 1)], 0.0)
            self.matrix = torch.tensor(m, dtype=torch.float32, device=device)
            # views of every top-left corner, made once (a slice costs ~1 us per call on CPU)
            if self.mono:
                self.mats = [self.matrix[0, :T - 1 + k, :k] for k in range(self.sub + 1)]
            else:
                self.mats = [self.matrix[:, :T - 1 + k, :k] for k in range(self.sub + 1)]

    @staticmethod
    def subblock(rows: int, T: int, max_block: int, device) -> int:
        """Frames per GEMM: the largest power of two (at most ``max_block``, on CPU 256) whose
        Toeplitz matrices fit the budget; 0 where that would be under 8 frames (conv1d)."""
        kind = torch.device(device).type
        budget = _TOEPLITZ_BYTES.get(kind, 1 << 20)
        cap = max_block if kind != "cpu" else min(max_block, 256)
        b = 1 << max(0, int(cap - 1).bit_length())  # next power of two >= cap
        while b > 1 and rows * (T - 1 + b) * b * 4 > budget:
            b //= 2
        b = min(b, max_block)
        return 0 if b < min(_MIN_SUBBLOCK, max_block) else b

    def run(self, window: torch.Tensor, out: torch.Tensor) -> None:
        """Write the ``n`` outputs for ``window`` (``(C, T-1+n)``) into ``out`` (``(C, n)``)."""
        n = out.shape[1]
        T = self.T
        if not self.sub:
            out.copy_(F.conv1d(window.unsqueeze(0), self.weight, groups=out.shape[0])[0])
            return
        b = self.sub
        if n <= b:  # the usual case: one GEMM
            if self.mono:
                torch.matmul(window, self.mats[n], out=out)
            else:
                torch.bmm(window.unsqueeze(1), self.mats[n], out=out.unsqueeze(1))
            return
        for i in range(0, n, b):
            k = min(b, n - i)
            w = window[:, i:i + T - 1 + k]
            if self.mono:
                torch.matmul(w, self.mats[k], out=out[:, i:i + k])
            else:
                torch.bmm(w.unsqueeze(1), self.mats[k], out=out[:, i:i + k].unsqueeze(1))


    def run_add(self, window: torch.Tensor, base: torch.Tensor, out: torch.Tensor) -> None:
        """``out = base + head(window)``: like ``run``, one fused GEMM per sub-block."""
        n = out.shape[1]
        b, T = self.sub, self.T
        if not b:
            self.run(window, out)
            out.add_(base)
            return
        if n <= b:
            if self.mono:
                torch.addmm(base, window, self.mats[n], out=out)
            else:
                torch.baddbmm(base.unsqueeze(1), window.unsqueeze(1), self.mats[n],
                              out=out.unsqueeze(1))
            return
        for i in range(0, n, b):
            k = min(b, n - i)
            self.run_add(window[:, i:i + T - 1 + k], base[:, i:i + k], out[:, i:i + k])


class DirectFIR:
    """Direct-form FIR, history carried across blocks.

    Args:
        taps: filter taps, numpy ``(T,)`` (every channel) or ``(channels, T)`` / ``(1, T)``.
        channels: number of channels of the blocks.
        max_block: the most frames one ``process`` call receives.
        device: torch device of the blocks and of all buffers.
        capture: keep the history at fixed places (``ShiftedHistory``), so that every block of
            one length runs the same kernels (a CUDA graph can replay it).

    Shape: ``process`` takes ``(channels, n)`` float32, ``1 <= n <= max_block``, and returns
    ``(channels, n)`` float32: a view into an internal buffer, valid until the next call.
    Output sample ``t`` depends on input samples up to ``t`` only (no latency).

    ``__init__`` allocates everything; ``process`` allocates nothing but small temporaries
    where torch has no ``out=`` (the conv1d path for thousands of taps); call it from one thread.
    """

    def __init__(self, taps, channels: int, max_block: int, device="cpu", capture: bool = False) -> None:
        h = as_taps(taps, channels)
        self.channels = int(channels)
        self.max_block = check_max_block(max_block)
        self.num_taps = h.shape[1]
        self.device = torch.device(device)
        self._hist = input_history(self.channels, self.num_taps - 1, self.max_block, self.device, capture)
        self._core = DirectCore(h, self.channels, self.max_block, self.device)
        self._out = torch.zeros(self.channels, self.max_block, device=self.device)
        self._outs = [self._out[:, :n] for n in range(self.max_block + 1)]

    @property
    def latency(self) -> int:
        """Added latency in samples: always 0."""
        return 0

    def before_block(self, frames: int) -> None:
        """Host side of the next block: nothing here (convolvers share this interface)."""

    def process(self, x: torch.Tensor) -> torch.Tensor:
        n = check_block(x, self.channels, self.max_block)
        self._hist.append(x)
        out = self._outs[n]
        self._core.run(self._hist.window(0, self.num_taps - 1 + n), out)
        return out

    def reset(self) -> None:
        """Clear the input history (taps are kept)."""
        self._hist.reset()
