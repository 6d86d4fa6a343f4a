"""The three GPU kernels of a ``far.FarSegment``'s tick (Triton); the FFTs run between them.

- ``enter``: a program per channel writes the call's input into the input ring; more programs
  gather the tick's group's windows in pieces, the call's own samples from its input (no
  program waits for another).
- ``multiply_add``: a program per range of bins and channel of the group enters the new
  spectrum into the delay line at the result's slot, then sums ``X_{m-j} H_j`` over the
  partitions in tiles (complex numbers as (real, imaginary) float32 pairs).
- ``add``: a program per channel adds the results due at the call's samples to the output
  (result ``n // Q - 2`` at sample ``n``: never the one stored); more programs store the last
  ``Q`` samples of the tick's inverse transform as result ``m``, in pieces.

The group, slots and stream position come from the device control ``far_at``, so a CUDA graph
replays every tick. ``tests/test_far.py`` checks them against the torch path.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, tl, triton

TILE = 1024  # samples per tile of the copies
BINS = 16  # bins per program of the multiply-add (an H100, 64 ch x 10 s: 16 x 32 took 7.6 us, 64 x 16 10.1)
PARTS = 32  # partitions per tile of the multiply-add


def enter(x: torch.Tensor, inputs: torch.Tensor, far_at: torch.Tensor, window: torch.Tensor | None) -> None:
    """Write ``x`` ``(C, n)`` into the ring ``inputs`` ``(C, L)`` from sample ``far_at[0]``; with
    a ``window`` ``(C/R, 2Q)``, fill it for group ``far_at[1]`` with samples from ``far_at[3]``."""
    channels, frames = x.shape
    per, width = (0, 0) if window is None else window.shape
    target = inputs if window is None else window
    pieces = triton.cdiv(width, TILE)
    _enter_kernel[(channels + per * pieces,)](x, *x.stride(), inputs, inputs.stride(0), inputs.shape[1], far_at,
                                              target, target.stride(0), width, pieces, per, channels, frames,
                                              TILE=TILE, **chained(inputs))


def multiply_add(spectrum: torch.Tensor, X: torch.Tensor, H: torch.Tensor, far_at: torch.Tensor,
                 out: torch.Tensor) -> torch.Tensor:
    """Enter ``spectrum`` ``(C/R, F)`` into ``X`` ``(C, K, F)`` at group ``far_at[1]``, slot
    ``far_at[2]``; ``out`` ``(C/R, F)`` = ``sum_j X[c, (slot - j) % K] H[c % rows, j]`` (``H``
    ``(rows, K, F)``). All complex64, contiguous. Returns ``out``."""
    per, F = out.shape
    channels, K = X.shape[:2]
    _multiply_add_kernel[(triton.cdiv(F, BINS), per)](
        torch.view_as_real(spectrum), torch.view_as_real(X), torch.view_as_real(H), far_at, torch.view_as_real(out),
        F, K, per, H.shape[0], BINS=BINS, PARTS=PARTS, **chained(out))
    return out


def add(samples: torch.Tensor | None, results: torch.Tensor, far_at: torch.Tensor, Q: int,
        out: torch.Tensor) -> torch.Tensor:
    """With ``samples`` ``(C/R, 2Q)``: ``results[group, slot]`` = its last ``Q`` (group
    ``far_at[1]``, slot ``far_at[4]`` of ``results`` ``(C, 3Q)``). And ``out`` ``(C, n)`` +=
    the results at samples ``far_at[0] + t``. Returns ``out``."""
    channels, frames = out.shape
    per = 0 if samples is None else samples.shape[0]
    source = results if samples is None else samples
    pieces = triton.cdiv(Q, TILE)
    _add_kernel[(channels + per * pieces,)](source, source.stride(0), pieces, per, results, results.stride(0), far_at,
                                            out, out.stride(0), channels, frames, Q, TILE=TILE, **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _enter_kernel(x, x_stride, x_step, inputs, inputs_stride, size, far_at, window, window_stride, width,
                      pieces, per, channels, frames, TILE: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        program = tl.program_id(0)
        position = tl.load(far_at)
        if program < channels:  # the call's input into the ring
            line = inputs + program * inputs_stride
            for start in range(0, frames, TILE):
                t = start + tl.arange(0, TILE)
                live = t < frames
                tl.store(line + (position + t) % size, tl.load(x + program * x_stride + t * x_step, mask=live),
                         mask=live)
        else:  # a piece of a window: older samples from the ring, the call's own from x
            member, piece = (program - channels) // pieces, (program - channels) % pieces
            channel = tl.load(far_at + 1) * per + member
            i = piece * TILE + tl.arange(0, TILE)
            sample = tl.load(far_at + 3) + i
            inside = i < width
            mine = sample >= position
            older = tl.load(inputs + channel * inputs_stride + (sample % size + size) % size, mask=inside & ~mine,
                            other=0.0)
            fresh = tl.load(x + channel * x_stride + (sample - position) * x_step, mask=inside & mine, other=0.0)
            tl.store(window + member * window_stride + i, older + fresh, mask=inside)

    @triton.jit
    def _multiply_add_kernel(spectrum, X, H, far_at, out, F, K, per, rows, BINS: tl.constexpr,
                             PARTS: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        member = tl.program_id(1)
        channel = (tl.load(far_at + 1) * per + member).to(tl.int64)
        slot = tl.load(far_at + 2)
        f = tl.program_id(0) * BINS + tl.arange(0, BINS)
        live = f < F
        pair = tl.arange(0, 2)  # (real, imaginary): 8-byte reads
        new = tl.load(spectrum + ((member * F + f) * 2)[:, None] + pair[None, :], mask=live[:, None])
        tl.store(X + (((channel * K + slot) * F + f) * 2)[:, None] + pair[None, :], new, mask=live[:, None])
        tl.debug_barrier()  # the new spectrum before the sum reads it
        total_re = tl.zeros([PARTS, BINS], dtype=tl.float32)
        total_im = tl.zeros([PARTS, BINS], dtype=tl.float32)
        h_line = H + (channel % rows) * K * F * 2
        for first in range(0, K, PARTS):
            j = first + tl.arange(0, PARTS)
            use = (j < K)[:, None] & live[None, :]
            s = (slot - j + K) % K  # the block that meets partition j
            x = tl.load(X + (((channel * K + s)[:, None] * F + f[None, :]) * 2)[:, :, None] + pair[None, None, :],
                        mask=use[:, :, None], other=0.0)
            h = tl.load(h_line + ((j[:, None] * F + f[None, :]) * 2)[:, :, None] + pair[None, None, :],
                        mask=use[:, :, None], other=0.0)
            x_re, x_im = tl.split(x)
            h_re, h_im = tl.split(h)
            total_re += x_re * h_re - x_im * h_im
            total_im += x_re * h_im + x_im * h_re
        target = out + (member * F + f) * 2
        tl.store(target, tl.sum(total_re, axis=0), mask=live)
        tl.store(target + 1, tl.sum(total_im, axis=0), mask=live)

    @triton.jit
    def _add_kernel(samples, samples_stride, pieces, per, results, results_stride, far_at, out, out_stride, channels,
                    frames, Q, TILE: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        program = tl.program_id(0)
        if program < channels:  # the results due at the call's samples
            position = tl.load(far_at)
            line = results + program * results_stride
            for start in range(0, frames, TILE):
                t = start + tl.arange(0, TILE)
                live = t < frames
                n = position + t
                place = (n // Q + 1) % 3 * Q + n % Q  # result n // Q - 2, at its slot
                total = tl.load(out + program * out_stride + t, mask=live) + tl.load(line + place, mask=live)
                tl.store(out + program * out_stride + t, total, mask=live)
        else:  # a piece of the tick's samples stored as its group's result
            member, piece = (program - channels) // pieces, (program - channels) % pieces
            channel = tl.load(far_at + 1) * per + member
            j = piece * TILE + tl.arange(0, TILE)
            value = tl.load(samples + member * samples_stride + Q + j, mask=j < Q)
            tl.store(results + channel * results_stride + tl.load(far_at + 4) * Q + j, value, mask=j < Q)
