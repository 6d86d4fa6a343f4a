"""Two GPU kernels around a ``CaptureConvolver``'s tick (Triton), instead of eight torch ops.

Per block of ``G`` frames (``G`` the head partition) the torch path appends the block to the
input history (a join and a copy), gathers the tick's input window, moves the previous tick's
tail (a copy), stores the new one (a copy), gathers the block's part of the tails and adds the
head's direct convolution (a batched GEMM). Here, a program per channel each:

- ``append_window``: the history moves on by the block and takes it at its end (every value
  read, a barrier, every value written), then the window is gathered from it;
- ``finish``: the block's part of the tails ``[old second half, new tick]`` read directly from
  both, the head ``sum_k h[k] x[t - k]`` (``k < G``) computed from the history in tiles, and the
  new tick stored as the tails' second half (after a barrier: every read of the old one first).
  The first half is not written: it is only ever read as the second half of the block before.

The FFT ring (``upols.RingSegment``, ``fused_spectra``) runs between them. For FFT sizes up to
``fused_spectra.DIRECT_MAX`` the ring hands over the result's spectra and ``finish`` first makes
the tick's samples from them, a direct inverse DFT (the inverse FFT and its input copy go).
``tests/test_fused_convolver.py`` checks them against the torch path.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, tl, triton
from .fused_spectra import INVERSE_ROWS

TILE = 64  # frames and taps per tile of the head


def append_window(x: torch.Tensor, history: torch.Tensor, keep: int, window_at: torch.Tensor,
                  window: torch.Tensor) -> torch.Tensor:
    """Append ``x`` ``(C, n)`` to ``history`` ``(C, size)`` (the newest sample last; only the last
    ``keep + n`` are kept valid), then ``window[:, i] = history[:, window_at[i]]``; returns ``window``."""
    channels, frames = x.shape
    size, width = history.shape[1], window.shape[1]
    _append_window_kernel[(channels,)](x, *x.stride(), history, history.stride(0), size, keep, window_at, window,
                                       window.stride(0), width, frames, MOVED=triton.next_power_of_2(keep + frames),
                                       WIDTH=triton.next_power_of_2(width), **chained(window))
    return window


def finish(tails: torch.Tensor, tick: torch.Tensor, tail_at: torch.Tensor, head: torch.Tensor,
           history: torch.Tensor, out: torch.Tensor, spectra: torch.Tensor | None = None,
           table: torch.Tensor | None = None) -> torch.Tensor:
    """``out`` ``(C, n)`` = ``[tails[:, G:], tick]`` at ``tail_at[:n]`` (``tails`` ``(C, 2G)``,
    ``tick`` ``(C, G)``) plus the head taps ``head`` ``(rows, <= G)`` (rows 1 or ``C``) run over
    ``history`` ``(C, size)``, whose last ``n`` samples are the block's; then ``tails[:, G:] =
    tick``. With ``spectra`` ``(C, G + 1)`` complex64 and ``table`` (``fused_spectra.turns(2G)``),
    ``tick`` is first set to the last ``G`` samples of ``irfft(spectra, 2G)`` unscaled (a direct
    inverse DFT). Returns ``out``."""
    channels, frames = out.shape
    half = tick.shape[1]
    head_stride = head.stride(0) if head.shape[0] > 1 else 0  # a mono head serves every channel
    direct = spectra is not None
    _finish_kernel[(channels,)](tails, tails.stride(0), tick, tick.stride(0), tail_at, head, head_stride, head.shape[1],
                                history, history.stride(0), history.shape[1], out, out.stride(0),
                                torch.view_as_real(spectra) if direct else tick, table if direct else tick,
                                frames, half, DIRECT=direct, HALF=triton.next_power_of_2(half), TILE=TILE,
                                BINS=triton.next_power_of_2(half + 1), ROWS=INVERSE_ROWS, **chained(out))
    return out


if triton is not None:
    from .fused_spectra import inverse_samples

    @triton.jit
    def _append_window_kernel(x, x_stride, x_step, history, history_stride, size, keep, window_at, window,
                              window_stride, width, frames, MOVED: tl.constexpr, WIDTH: tl.constexpr,
                              PDL: tl.constexpr):
        follow(PDL)
        channel = tl.program_id(0)
        x += channel * x_stride
        history += channel * history_stride
        at = size - keep - frames + tl.arange(0, MOVED)  # the places written: the last keep + n
        source = at + frames
        valid = at < size
        kept = tl.load(history + source, mask=valid & (source < size), other=0.0)
        fresh = tl.load(x + (source - size) * x_step, mask=valid & (source >= size), other=0.0)
        tl.debug_barrier()  # every read before any write
        tl.store(history + at, kept + fresh, mask=valid)
        tl.debug_barrier()
        i = tl.arange(0, WIDTH)
        places = tl.load(window_at + i, mask=i < width, other=0)
        tl.store(window + channel * window_stride + i, tl.load(history + places, mask=i < width), mask=i < width)

    @triton.jit
    def _finish_kernel(tails, tails_stride, tick, tick_stride, tail_at, head, head_stride, taps, history,
                       history_stride, size, out, out_stride, spectra, table, frames, half, DIRECT: tl.constexpr,
                       HALF: tl.constexpr, TILE: tl.constexpr, BINS: tl.constexpr, ROWS: tl.constexpr,
                       PDL: tl.constexpr):
        follow(PDL)
        channel = tl.program_id(0)
        tails += channel * tails_stride
        tick += channel * tick_stride
        history += channel * history_stride
        out += channel * out_stride
        head += channel * head_stride
        if DIRECT:
            inverse_samples(spectra + channel * (half + 1) * 2, table, tick, half, F=BINS, ROWS=ROWS)
            tl.debug_barrier()  # the tick stored before it is read back
        for start in range(0, frames, TILE):
            t = start + tl.arange(0, TILE)
            live = t < frames
            place = tl.load(tail_at + t, mask=live, other=0)  # in the new tails
            total = tl.load(tails + half + place, mask=live & (place < half), other=0.0)
            total += tl.load(tick + place - half, mask=live & (place >= half), other=0.0)
            products = tl.zeros([TILE, TILE], dtype=tl.float32)
            for first in range(0, taps, TILE):  # the head: sum_k h[k] x[t - k]
                k = first + tl.arange(0, TILE)
                h = tl.load(head + k, mask=k < taps, other=0.0)
                sample = size - frames + t[:, None] - k[None, :]
                products += h[None, :] * tl.load(history + sample, mask=live[:, None] & (k < taps)[None, :], other=0.0)
            tl.store(out + t, total + tl.sum(products, axis=1), mask=live)
        j = tl.arange(0, HALF)
        new = tl.load(tick + j, mask=j < half)
        tl.debug_barrier()  # every read of the old tails before any write
        tl.store(tails + half + j, new, mask=j < half)
