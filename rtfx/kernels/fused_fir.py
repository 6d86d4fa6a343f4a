"""A short FIR (a cabinet) as one GPU kernel per block (Triton), for CUDA graphs.

``DirectFIR`` in capture mode takes five kernels a block on a GPU: two to shift its history,
a GEMM with its split-K reduction, and the effect's gain and blend after it. ``FusedFIR`` keeps
the history in a ring instead (the host moves the write position, a ``Control``) and computes
``y[t] = sum_k h[k] x[t - k]`` in one launch, split like the GEMM: one program per segment of
``TAPS`` taps and tile of ``FRAMES`` output frames of a channel writes its partial sums, then
takes a ticket (an atomic count); the tile's last program adds the partials up in a fixed order
(the same result on every run), applies the effect's per-frame gain and blend, stores the
block's samples into the ring and clears the count. The ring holds ``T - 1 + max_block``
samples, so those stores never touch a sample another program reads in the same block.
``tests/test_fused_fir.py`` checks it against ``DirectFIR``.
"""
from __future__ import annotations

import torch

from ..controls import Control
from .fir import as_taps, check_block, check_max_block
from .fused import chained, follow, given, tl, triton

# Output frames and taps per program: small tiles, many programs (an H100, the guitar cabinet's
# 1920 taps, 2 channels, 64 frames: 3.9 us a block; 64 x 64 took 5.9).
FRAMES = 16
TAPS = 32


class FusedFIR:
    """Direct-form FIR with its history in a ring; one Triton kernel per block (CUDA).

    Args and shapes as ``DirectFIR`` (``taps`` ``(T,)`` or ``(rows, T)``, ``process`` takes
    ``(channels, n)``, ``1 <= n <= max_block``, and returns a view of an internal buffer).
    ``process`` can fold in an effect's per-frame ``gain`` ``(n,)`` and ``blend``
    ``(dry (channels, n), amounts (n,))``: then it returns ``dry + amounts * (gain * y - dry)``.
    """

    latency = 0

    def __init__(self, taps, channels: int, max_block: int, device="cuda") -> None:
        h = as_taps(taps, channels)
        self.channels, self.max_block = int(channels), check_max_block(max_block)
        self.num_taps = h.shape[1]
        self._taps = torch.tensor(h, dtype=torch.float32, device=device)
        self._ring = torch.zeros(self.channels, self.num_taps - 1 + self.max_block, device=device)
        self._origin = Control(1, device, torch.int64)  # ring index of the block's first sample
        self._next = 0  # ... of the next block's
        self._out = torch.zeros(self.channels, self.max_block, device=device)
        self._segments = triton.cdiv(self.num_taps, TAPS)
        tiles = self.channels * triton.cdiv(self.max_block, FRAMES)
        self._partials = torch.zeros(tiles, self._segments, FRAMES, device=device)
        self._tickets = torch.zeros(tiles, dtype=torch.int32, device=device)

    def before_block(self, frames: int) -> None:
        """Host side of the next block of ``frames``: where it goes in the ring."""
        self._origin.set(self._next)
        self._next = (self._next + frames) % self._ring.shape[1]

    def process(self, x: torch.Tensor, gain: torch.Tensor | None = None, blend=None) -> torch.Tensor:
        frames = check_block(x, self.channels, self.max_block)
        out = self._out[:, :frames]
        dry, amounts = blend if blend is not None else (x, x)
        tiles = triton.cdiv(frames, FRAMES)
        _fir_kernel[(self._segments, self.channels * tiles)](
            x, *x.stride(), self._ring, self._ring.stride(0), self._ring.shape[1], self._origin.tensor,
            self._taps, self._taps.stride(0) if self._taps.shape[0] > 1 else 0, self.num_taps, self._partials,
            self._tickets, out, out.stride(0), given(gain, x), dry, *dry.stride(), amounts, frames, tiles,
            self._segments, GAIN=gain is not None, BLEND=blend is not None, FRAMES=FRAMES, TAPS=TAPS,
            SEGMENTS=triton.next_power_of_2(self._segments), **chained(out))
        return out

    def reset(self) -> None:
        """Clear the history (taps are kept)."""
        self._ring.zero_()


if triton is not None:
    @triton.jit
    def _fir_kernel(x, x_stride, x_step, ring, ring_stride, size, origin, taps, taps_stride, num_taps, partials,
                    tickets, out, out_stride, gain, dry, dry_stride, dry_step, amounts, frames, tiles, segments,
                    GAIN: tl.constexpr, BLEND: tl.constexpr, FRAMES: tl.constexpr, TAPS: tl.constexpr,
                    SEGMENTS: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        segment, row = tl.program_id(0), tl.program_id(1)
        channel, tile = row // tiles, row % tiles
        x += channel * x_stride
        ring += channel * ring_stride
        t = tile * FRAMES + tl.arange(0, FRAMES)  # the output frames of this row
        live = t < frames
        start = tl.load(origin)
        k = segment * TAPS + tl.arange(0, TAPS)
        h = tl.load(taps + channel * taps_stride + k, mask=k < num_taps, other=0.0)
        back = t[:, None] - k[None, :]  # the input sample's frame, from the block's first
        used = live[:, None] & (k < num_taps)[None, :]
        fresh = tl.load(x + back * x_step, mask=used & (back >= 0), other=0.0)
        held = tl.load(ring + (start + back + size) % size, mask=used & (back < 0), other=0.0)
        frame = tl.arange(0, FRAMES)
        tl.store(partials + (row * segments + segment) * FRAMES + frame, tl.sum((fresh + held) * h[None, :], axis=1))
        tl.debug_barrier()  # every thread's partials stored before the ticket releases them
        if tl.atomic_add(tickets + row, 1, sem="acq_rel", scope="gpu") == segments - 1:  # the last: add up
            each = tl.arange(0, SEGMENTS)
            parts = tl.load(partials + (row * segments + each[:, None]) * FRAMES + frame[None, :],
                            mask=(each < segments)[:, None], other=0.0, cache_modifier=".cg")
            total = tl.sum(parts, axis=0)
            if GAIN:
                total *= tl.load(gain + t, mask=live, other=0.0)
            if BLEND:
                before = tl.load(dry + channel * dry_stride + t * dry_step, mask=live, other=0.0)
                total = before + tl.load(amounts + t, mask=live, other=0.0) * (total - before)
            tl.store(out + channel * out_stride + t, total, mask=live)
            tl.store(ring + (start + t) % size, tl.load(x + t * x_step, mask=live), mask=live)
            tl.store(tickets + row, 0)
