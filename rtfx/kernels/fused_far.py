"""The three GPU kernels of a ``far.FarSegment``'s tick (Triton); the FFTs run between them.

- ``enter``: a program per channel writes the call's input into the input ring; the programs of
  the tick's channel group then gather their windows (after a barrier: the window may end in
  the call's own samples).
- ``multiply_add``: a program per range of bins and channel of the group enters the new
  spectrum into the delay line at the result's slot, then sums ``X_{m-j} H_j`` over the
  partitions in tiles (complex numbers as (real, imaginary) float32 pairs).
- ``add``: a program per channel; the group's programs store the last ``Q`` samples of the
  inverse transform as result ``m``; every program adds the results due at the call's samples
  to the output (result ``n // Q - 2`` at sample ``n``: never the one stored).

The group, slots and stream position come from the device control ``far_at``, so a CUDA graph
replays every tick. ``tests/test_far.py`` checks them against the torch path.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, tl, triton

TILE = 1024  # samples per tile of the copies
BINS = 64  # bins per program of the multiply-add
PARTS = 16  # partitions per tile of the multiply-add


def enter(x: torch.Tensor, inputs: torch.Tensor, far_at: torch.Tensor, window: torch.Tensor | None) -> None:
    """Write ``x`` ``(C, n)`` into the ring ``inputs`` ``(C, L)`` from ``far_at[0]``; with a
    ``window`` ``(C/R, 2Q)``, fill it from the ring for group ``far_at[1]`` from ``far_at[3]``."""
    channels, frames = x.shape
    target = inputs if window is None else window
    _enter_kernel[(channels,)](x, *x.stride(), inputs, inputs.stride(0), inputs.shape[1], far_at, target,
                               target.stride(0), target.shape[1], target.shape[0], frames,
                               WINDOW=window is not None, TILE=TILE, **chained(inputs))


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
    ``far_at[1]``, slot ``far_at[4]`` of ``results`` ``(C, 3Q)``). Then ``out`` ``(C, n)`` +=
    the results at samples ``far_at[0] + t``. Returns ``out``."""
    channels, frames = out.shape
    store = samples is not None
    source = samples if store else results
    _add_kernel[(channels,)](source, source.stride(0), source.shape[0], results, results.stride(0), far_at, out,
                             out.stride(0), frames, Q, STORE=store, TILE=TILE, **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _enter_kernel(x, x_stride, x_step, inputs, inputs_stride, size, far_at, window, window_stride, width, per,
                      frames, WINDOW: tl.constexpr, TILE: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        channel = tl.program_id(0)
        position = tl.load(far_at)
        line = inputs + channel * inputs_stride
        for start in range(0, frames, TILE):
            t = start + tl.arange(0, TILE)
            live = t < frames
            value = tl.load(x + channel * x_stride + t * x_step, mask=live)
            tl.store(line + (position + t) % size, value, mask=live)
        if WINDOW:
            first_channel = tl.load(far_at + 1) * per
            if (channel >= first_channel) & (channel < first_channel + per):
                tl.debug_barrier()  # the call's samples in the ring before the window reads them
                origin = tl.load(far_at + 3)
                row = window + (channel - first_channel) * window_stride
                for start in range(0, width, TILE):
                    i = start + tl.arange(0, TILE)
                    tl.store(row + i, tl.load(line + (origin + i) % size, mask=i < width), mask=i < width)

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
    def _add_kernel(samples, samples_stride, per, results, results_stride, far_at, out, out_stride, frames, Q,
                    STORE: tl.constexpr, TILE: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        channel = tl.program_id(0)
        line = results + channel * results_stride
        if STORE:
            first_channel = tl.load(far_at + 1) * per
            if (channel >= first_channel) & (channel < first_channel + per):
                source = samples + (channel - first_channel) * samples_stride + Q
                target = line + tl.load(far_at + 4) * Q
                for start in range(0, Q, TILE):
                    j = start + tl.arange(0, TILE)
                    tl.store(target + j, tl.load(source + j, mask=j < Q), mask=j < Q)
        position = tl.load(far_at)
        for start in range(0, frames, TILE):
            t = start + tl.arange(0, TILE)
            live = t < frames
            n = position + t
            place = (n // Q + 1) % 3 * Q + n % Q  # result n // Q - 2, at its slot
            total = tl.load(out + channel * out_stride + t, mask=live) + tl.load(line + place, mask=live)
            tl.store(out + channel * out_stride + t, total, mask=live)
