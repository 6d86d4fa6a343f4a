"""One GPU kernel per block for a reverb's pre-delay (Triton), instead of ten torch ops.

In a CUDA graph ``PreDelay`` writes the block into its ring and reads it back at two delays
(the new one and, while a crossfade runs, the old one) with ring indices computed on the device:
three small kernels per access, plus the crossfade. Here one program per channel stores the
block at ``(origin + t) % length``, waits for every store of its row (a barrier: a delay shorter
than the block reads samples of this block), then reads both delays and crossfades them.
``tests/test_reverb.py`` checks it against the torch path.
"""
from __future__ import annotations

import torch

from .fused import tl, triton

TILE = 128  # frames per tile


def predelay(ring: torch.Tensor, origin: torch.Tensor, reads: torch.Tensor, weights: torch.Tensor,
             x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write ``x`` ``(C, n)`` into ``ring`` ``(C, length)`` from ring index ``origin`` ``(1,)``
    on; ``out`` ``(C, n)`` gets ``old + weights * (new - old)``, the reads from ring indices
    ``reads`` ``[new, old]`` on (int64, ``>= 0``). Returns ``out``."""
    channels, frames = x.shape
    _predelay_kernel[(channels,)](x, *x.stride(), ring, ring.stride(0), ring.shape[1], origin, reads, weights,
                                  out, out.stride(0), frames, TILE=TILE)
    return out


if triton is not None:
    @triton.jit
    def _predelay_kernel(x, x_stride, x_step, ring, ring_stride, length, origin, reads, weights, out, out_stride,
                         frames, TILE: tl.constexpr):
        channel = tl.program_id(0)
        x += channel * x_stride
        ring += channel * ring_stride
        out += channel * out_stride
        write_at, new_at, old_at = tl.load(origin), tl.load(reads), tl.load(reads + 1)
        for start in range(0, frames, TILE):
            t = start + tl.arange(0, TILE)
            tl.store(ring + (write_at + t) % length, tl.load(x + t * x_step, mask=t < frames), mask=t < frames)
        tl.debug_barrier()
        for start in range(0, frames, TILE):
            t = start + tl.arange(0, TILE)
            new = tl.load(ring + (new_at + t) % length, mask=t < frames)
            old = tl.load(ring + (old_at + t) % length, mask=t < frames)
            weight = tl.load(weights + t, mask=t < frames)
            tl.store(out + t, old + weight * (new - old), mask=t < frames)
