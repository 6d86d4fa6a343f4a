"""One GPU kernel for the frequency-domain delay line of a ``RingSegment`` (Triton): the new
spectrum into the ring and the ring's sum of products, instead of five torch ops.

``RingSegment.tick`` on the torch path writes block ``b``'s spectrum into ring slot ``b % K``
(``index_copy_``), computes the partitions' ring order (two ops), gathers the partition spectra
into that order (a copy of ``H``) and multiplies (one batched product). Here a program per bin
and IR row (and group of channels) writes its own entries of the new spectrum, then streams its
lines of the ring once, reading ``H`` at ``(b - s) % K`` in place: ``Y[f, r, g] = sum_s X[f, r,
g, s] H[f, r, (b - s) % K]``. Complex numbers as (real, imaginary) float32 pairs.
For FFT sizes up to ``DIRECT_MAX`` the program also makes its bin of the new spectrum itself, a
direct DFT of the block's window (``2Q`` multiply-adds per channel, the twiddles from a table of
``2Q`` turns): the forward FFT kernel and its launch go (``inverse_samples`` does the inverse
likewise inside the convolver's last kernel).
``tests/test_fused_spectra.py`` checks it against the torch path.
"""
from __future__ import annotations

import numpy as np
import torch

from .fused import chained, follow, tl, triton

TILE = 2048  # ring entries per tile: channels of the program times partitions
WARPS = 4
DIRECT_MAX = 256  # the largest FFT size done as a direct DFT inside the kernels
INVERSE_ROWS = 16  # output samples per tile of inverse_samples


def turns(size: int, device) -> torch.Tensor:
    """The twiddle table of the direct DFTs: ``(size, 2)`` float32 ``cos, sin(2 pi m / size)``."""
    angle = 2 * np.pi * np.arange(size) / size
    return torch.tensor(np.stack([np.cos(angle), np.sin(angle)], 1), dtype=torch.float32, device=device)


def ring_product(source: torch.Tensor, ring: torch.Tensor, spectra: torch.Tensor, slot: torch.Tensor,
                 out: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
    """Write the new block's spectrum into ``ring`` ``(F, rows, groups, K)`` at ``slot`` (``(1,)``
    int64) and set ``out`` ``(C, F)`` to the ring's products with ``spectra`` ``(F, rows, K)``;
    channel ``c = g * rows + r``. ``source``: that spectrum ``(C, F)``, or with ``table``
    (``turns(2F - 2)``) the block's window ``(C, 2F - 2)`` float32 (rows of unit step),
    transformed here. Complex tensors complex64, all contiguous (``out`` channel-major, as the
    inverse FFT reads it without a copy). Returns ``out``."""
    F, rows, groups, K = ring.shape
    block_groups = min(triton.next_power_of_2(groups), 16)
    parts = min(TILE // block_groups, triton.next_power_of_2(K))
    direct = table is not None
    size = 2 * F - 2
    source = source if direct else torch.view_as_real(source)
    _ring_kernel[(F * rows, triton.cdiv(groups, block_groups))](
        source, table if direct else source, torch.view_as_real(ring),
        torch.view_as_real(spectra), slot, torch.view_as_real(out), rows, groups, K, F, size,
        source.stride(0) if direct else 0, DIRECT=direct,
        SIZE=triton.next_power_of_2(size), BLOCK_G=block_groups, PARTS=parts, num_warps=WARPS, **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _ring_kernel(source, table, ring, spectra, slot, out, rows, groups, K, F, size, window_stride,
                     DIRECT: tl.constexpr, SIZE: tl.constexpr, BLOCK_G: tl.constexpr, PARTS: tl.constexpr,
                     PDL: tl.constexpr):
        follow(PDL)
        line, first_group = tl.program_id(0), tl.program_id(1) * BLOCK_G  # line = f * rows + r
        f, r = line // rows, line % rows
        g = first_group + tl.arange(0, BLOCK_G)
        live = g < groups
        at = tl.load(slot)
        lines = ring + ((line * groups + g) * K * 2)[:, None]  # (BLOCK_G, 1): each group's line of K
        channel = g * rows + r
        if DIRECT:  # X[f] = sum_n w[n] exp(-2 pi i f n / size)
            n = tl.arange(0, SIZE)
            turn = (f * n) % size
            used = n < size
            window = tl.load(source + channel[:, None] * window_stride + n[None, :], mask=live[:, None] & used[None, :],
                             other=0.0)
            new_re = tl.sum(window * tl.load(table + turn * 2, mask=used, other=0.0)[None, :], axis=1)
            new_im = -tl.sum(window * tl.load(table + turn * 2 + 1, mask=used, other=0.0)[None, :], axis=1)
        else:
            new_re = tl.load(source + (channel * F + f) * 2, mask=live, other=0.0)
            new_im = tl.load(source + (channel * F + f) * 2 + 1, mask=live, other=0.0)
        tl.store(lines + at * 2, new_re[:, None], mask=live[:, None])
        tl.store(lines + at * 2 + 1, new_im[:, None], mask=live[:, None])
        tl.debug_barrier()  # the new entries before the sum reads them
        pair = tl.arange(0, 2)  # (real, imaginary): 8-byte reads
        total_re = tl.zeros([BLOCK_G, PARTS], dtype=tl.float32)
        total_im = tl.zeros([BLOCK_G, PARTS], dtype=tl.float32)
        for start in range(0, K, PARTS):
            s = start + tl.arange(0, PARTS)
            inside = s < K
            partition = (at - s + K) % K  # the partition that meets slot s
            h = tl.load(spectra + ((line * K + partition) * 2)[:, None] + pair[None, :], mask=inside[:, None], other=0.0)
            h_re, h_im = tl.split(h)
            both = live[:, None] & inside[None, :]
            x = tl.load(lines[:, :, None] + (s * 2)[None, :, None] + pair[None, None, :], mask=both[:, :, None], other=0.0)
            x_re, x_im = tl.split(x)
            total_re += x_re * h_re[None, :] - x_im * h_im[None, :]
            total_im += x_re * h_im[None, :] + x_im * h_re[None, :]
        target = out + (channel * F + f) * 2
        tl.store(target, tl.sum(total_re, axis=1), mask=live)
        tl.store(target + 1, tl.sum(total_im, axis=1), mask=live)

    @triton.jit
    def inverse_samples(spectra, table, tick, half, F: tl.constexpr, ROWS: tl.constexpr):
        """``tick[j]`` = sample ``half + j`` of ``irfft(spectra, 2 half)`` unscaled, for ``j < half``
        (the overlap-save part), as a direct sum over the ``half + 1`` bins of one channel's
        ``spectra`` (complex64 as float pairs; the imaginary parts of DC and Nyquist meet sines
        of 0). ``F``: a power of two above ``half``; ``table``: ``turns(2 half)``."""
        f = tl.arange(0, F)
        bins = f <= half
        weight = tl.where((f == 0) | (f == half), 1.0, 2.0)
        y_re = tl.load(spectra + f * 2, mask=bins, other=0.0) * weight
        y_im = tl.load(spectra + f * 2 + 1, mask=bins, other=0.0) * weight
        for start in range(0, half, ROWS):
            j = start + tl.arange(0, ROWS)
            turn = (f[None, :] * (half + j[:, None])) % (2 * half)
            inside = (j < half)[:, None] & bins[None, :]
            cos = tl.load(table + turn * 2, mask=inside, other=0.0)
            sin = tl.load(table + turn * 2 + 1, mask=inside, other=0.0)
            tl.store(tick + j, tl.sum(y_re[None, :] * cos - y_im[None, :] * sin, axis=1), mask=j < half)
