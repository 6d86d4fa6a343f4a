"""One GPU kernel for a streaming SOS block of one piece (Triton), instead of three torch ops.

``SosFilter`` filters a block of ``k`` frames as ``[s', y] = [s, x] @ M_k`` (``iir.py``): on a GPU
that is a copy of ``x`` next to the state, a small GEMM and a copy of the new state, ~3 us each
in a graph. Here one program loads each channel's ``[s, x]`` row, waits until every thread has
(a barrier: the new state overwrites the old in place), and computes ``M_k``'s columns in tiles:
the state's into ``state``, the outputs' into ``out``. ``tests/test_fused_sos.py`` checks it
against the torch path.
"""
from __future__ import annotations

import torch

from .fused import tl, triton

COLUMNS = 32  # columns of M per tile


def piece(x: torch.Tensor, state: torch.Tensor, matrix: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``[state, out] = [state, x] @ matrix`` for ``x`` ``(C, k)``, ``state`` ``(C, S)`` (updated
    in place), ``matrix`` ``(S + k, S + k)`` and ``out`` ``(C, k)``; returns ``out``."""
    channels, frames = x.shape
    width = state.shape[1] + frames
    _piece_kernel[(1,)](x, *x.stride(), state, state.stride(0), matrix, out, out.stride(0), channels,
                        STATES=state.shape[1], WIDTH=width, BLOCK_C=triton.next_power_of_2(channels),
                        BLOCK_IN=triton.next_power_of_2(width), COLUMNS=COLUMNS)
    return out


if triton is not None:
    @triton.jit
    def _piece_kernel(x, x_stride, x_step, state, state_stride, matrix, out, out_stride, channels,
                      STATES: tl.constexpr, WIDTH: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_IN: tl.constexpr,
                      COLUMNS: tl.constexpr):
        rows, inner = tl.arange(0, BLOCK_C), tl.arange(0, BLOCK_IN)
        live = (rows < channels)[:, None]
        held = tl.load(state + rows[:, None] * state_stride + inner[None, :], mask=live & (inner < STATES)[None, :],
                       other=0.0)
        fresh = tl.load(x + rows[:, None] * x_stride + (inner - STATES)[None, :] * x_step,
                        mask=live & ((inner >= STATES) & (inner < WIDTH))[None, :], other=0.0)
        row = held + fresh  # [s, x], zero beyond
        tl.debug_barrier()  # every thread holds the old state before any writes the new one
        for first in tl.static_range(0, WIDTH, COLUMNS):
            column = first + tl.arange(0, COLUMNS)
            m = tl.load(matrix + inner[:, None] * WIDTH + column[None, :],
                        mask=(inner < WIDTH)[:, None] & (column < WIDTH)[None, :], other=0.0)
            result = tl.sum(row[:, :, None] * m[None, :, :], axis=1)  # (channels, COLUMNS)
            tl.store(state + rows[:, None] * state_stride + column[None, :], result,
                     mask=live & (column < STATES)[None, :])
            tl.store(out + rows[:, None] * out_stride + (column - STATES)[None, :], result,
                     mask=live & ((column >= STATES) & (column < WIDTH))[None, :])
