"""One GPU kernel for a streaming SOS block of one piece (Triton), instead of three torch ops.

``SosFilter`` filters a block of ``k`` frames as ``[s', y] = [s, x] @ M_k`` (``iir.py``): on a GPU
that is a copy of ``x`` next to the state, a small GEMM and a copy of the new state, ~3 us each
in a graph. Here one program loads each channel's ``[s, x]`` row, waits until every thread has
(a barrier: the new state overwrites the old in place), and computes ``M_k``'s columns in tiles:
the state's into ``state``, the outputs' into ``out``. What an effect does around its filter
can ride along: a per-frame gain on the input and on the output, and the blend with the effect's
dry input. ``tests/test_fused_sos.py`` checks it against the torch path.
"""
from __future__ import annotations

import torch

from .fused import given, tl, triton

COLUMNS = 32  # columns of M per tile


def piece(x: torch.Tensor, state: torch.Tensor, matrix: torch.Tensor, out: torch.Tensor,
          gain_in: torch.Tensor | None = None, gain_out: torch.Tensor | None = None,
          blend: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``[state, y] = [state, x] @ matrix`` for ``x`` ``(C, k)``, ``state`` ``(C, S)`` (updated
    in place) and ``matrix`` ``(S + k, S + k)``; ``y`` into ``out`` ``(C, k)``, which it returns.

    ``gain_in``, ``gain_out``: ``(k,)`` per-frame gains on ``x`` and on ``y``; ``blend``:
    ``(dry (C, k), amounts (k,))``, then ``out = dry + amounts * (y - dry)``.
    """
    channels, frames = x.shape
    width = state.shape[1] + frames
    dry, amounts = blend if blend is not None else (x, x)
    _piece_kernel[(1,)](x, *x.stride(), state, state.stride(0), matrix, out, out.stride(0),
                        given(gain_in, x), given(gain_out, x),
                        dry, *dry.stride(), amounts, channels, GAIN_IN=gain_in is not None,
                        GAIN_OUT=gain_out is not None, BLEND=blend is not None,
                        STATES=state.shape[1], WIDTH=width, BLOCK_C=triton.next_power_of_2(channels),
                        BLOCK_IN=triton.next_power_of_2(width), COLUMNS=COLUMNS)
    return out


if triton is not None:
    @triton.jit
    def _piece_kernel(x, x_stride, x_step, state, state_stride, matrix, out, out_stride, gain_in, gain_out,
                      dry, dry_stride, dry_step, amounts, channels, GAIN_IN: tl.constexpr, GAIN_OUT: tl.constexpr,
                      BLEND: tl.constexpr, STATES: tl.constexpr, WIDTH: tl.constexpr, BLOCK_C: tl.constexpr,
                      BLOCK_IN: tl.constexpr, COLUMNS: tl.constexpr):
        rows, inner = tl.arange(0, BLOCK_C), tl.arange(0, BLOCK_IN)
        live = (rows < channels)[:, None]
        held = tl.load(state + rows[:, None] * state_stride + inner[None, :], mask=live & (inner < STATES)[None, :],
                       other=0.0)
        is_input = (inner >= STATES) & (inner < WIDTH)
        fresh = tl.load(x + rows[:, None] * x_stride + (inner - STATES)[None, :] * x_step,
                        mask=live & is_input[None, :], other=0.0)
        if GAIN_IN:
            fresh *= tl.load(gain_in + inner - STATES, mask=is_input, other=0.0)[None, :]
        row = held + fresh  # [s, x], zero beyond
        tl.debug_barrier()  # every thread holds the old state before any writes the new one
        for first in tl.static_range(0, WIDTH, COLUMNS):
            column = first + tl.arange(0, COLUMNS)
            m = tl.load(matrix + inner[:, None] * WIDTH + column[None, :],
                        mask=(inner < WIDTH)[:, None] & (column < WIDTH)[None, :], other=0.0)
            result = tl.sum(row[:, :, None] * m[None, :, :], axis=1)  # (channels, COLUMNS)
            tl.store(state + rows[:, None] * state_stride + column[None, :], result,
                     mask=live & (column < STATES)[None, :])
            is_output = (column >= STATES) & (column < WIDTH)
            if GAIN_OUT:
                result *= tl.load(gain_out + column - STATES, mask=is_output, other=0.0)[None, :]
            if BLEND:
                before = tl.load(dry + rows[:, None] * dry_stride + (column - STATES)[None, :] * dry_step,
                                 mask=live & is_output[None, :], other=0.0)
                amount = tl.load(amounts + column - STATES, mask=is_output, other=0.0)[None, :]
                result = before + amount * (result - before)
            tl.store(out + rows[:, None] * out_stride + (column - STATES)[None, :], result,
                     mask=live & is_output[None, :])
