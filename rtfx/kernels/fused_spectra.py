"""One GPU kernel for the frequency-domain delay line of a ``RingSegment`` (Triton): the new
spectrum into the ring and the ring's sum of products, instead of five torch ops.

``RingSegment.tick`` on the torch path writes block ``b``'s spectrum into ring slot ``b % K``
(``index_copy_``), computes the partitions' ring order (two ops), gathers the partition spectra
into that order (a copy of ``H``) and multiplies (one batched product). Here a program per bin
and IR row (and group of channels) writes its own entries of the new spectrum, then streams its
lines of the ring once, reading ``H`` at ``(b - s) % K`` in place: ``Y[f, r, g] = sum_s X[f, r,
g, s] H[f, r, (b - s) % K]``. Complex numbers as (real, imaginary) float32 pairs.
``tests/test_fused_spectra.py`` checks it against the torch path.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, tl, triton

TILE = 2048  # ring entries per tile: channels of the program times partitions
WARPS = 4


def ring_product(spectrum: torch.Tensor, ring: torch.Tensor, spectra: torch.Tensor, slot: torch.Tensor,
                 out: torch.Tensor) -> torch.Tensor:
    """Write ``spectrum`` ``(C, F)`` into ``ring`` ``(F, rows, groups, K)`` at ``slot`` (``(1,)``
    int64) and set ``out`` ``(C, F)`` to the ring's products with ``spectra`` ``(F, rows, K)``;
    channel ``c = g * rows + r``. All complex64, contiguous (``out`` channel-major, as the
    inverse FFT reads it without a copy). Returns ``out``."""
    F, rows, groups, K = ring.shape
    block_groups = min(triton.next_power_of_2(groups), 16)
    parts = min(TILE // block_groups, triton.next_power_of_2(K))
    _ring_kernel[(F * rows, triton.cdiv(groups, block_groups))](
        torch.view_as_real(spectrum), torch.view_as_real(ring), torch.view_as_real(spectra), slot,
        torch.view_as_real(out), rows, groups, K, F, BLOCK_G=block_groups, PARTS=parts, num_warps=WARPS,
        **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _ring_kernel(spectrum, ring, spectra, slot, out, rows, groups, K, F, BLOCK_G: tl.constexpr,
                     PARTS: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        line, first_group = tl.program_id(0), tl.program_id(1) * BLOCK_G  # line = f * rows + r
        f, r = line // rows, line % rows
        g = first_group + tl.arange(0, BLOCK_G)
        live = g < groups
        at = tl.load(slot)
        lines = ring + ((line * groups + g) * K * 2)[:, None]  # (BLOCK_G, 1): each group's line of K
        channel = g * rows + r
        new_re = tl.load(spectrum + (channel * F + f) * 2, mask=live, other=0.0)
        new_im = tl.load(spectrum + (channel * F + f) * 2 + 1, mask=live, other=0.0)
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
