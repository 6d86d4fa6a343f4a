"""One GPU kernel for a streaming SOS block of one piece (Triton), instead of three torch ops.

``SosFilter`` filters a block of ``k`` frames as ``[s', y] = [s, x] @ M_k`` (``iir.py``): on a GPU
that is a copy of ``x`` next to the state, a small GEMM and a copy of the new state, ~3 us each
in a graph. Here one launch does it, split like the GEMM over ``M_k``'s columns: one program per
tile of ``COLUMNS`` columns loads every channel's ``[s, x]`` row and stores its columns of
``[s', y]`` in the caller's output rows. None overwrites the state, which others may still be
reading: each takes a ticket (an atomic count, as in ``fused_fir.py``) once its threads have read
the state and stored their columns, and the last one copies ``s'`` into the state and clears the
count for the next launch (a CUDA graph replays the same one). What an effect does around its
filter can ride along: a per-frame gain on the input and on the output, and the blend with the
effect's dry input. ``tests/test_fused_sos.py`` checks it against the torch path.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, given, tl, triton

#: Columns of M per program: 5 programs for 4 sections and k = 64. On an H100, in a graph, 2.3 us
#: a launch, where one program took 2.75 (8 columns: about the same; 32: slower).
COLUMNS = 16


def piece(x: torch.Tensor, state: torch.Tensor, matrix: torch.Tensor, out: torch.Tensor, ticket: torch.Tensor,
          gain_in: torch.Tensor | None = None, gain_out: torch.Tensor | None = None,
          blend: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``[s', y] = [state, x] @ matrix`` into ``out`` ``(C, S + k)`` for ``x`` ``(C, k)``, ``state``
    ``(C, S)`` and ``matrix`` ``(S + k, S + k)``, then ``s'`` into ``state``; returns ``y``, a view
    of ``out``, which must not share memory with ``x``. ``ticket``: ``(1,)`` int32, zero before
    and after each launch; launches that may run at the same time need their own.

    ``gain_in``, ``gain_out``: ``(k,)`` per-frame gains on ``x`` and on ``y``; ``blend``:
    ``(dry (C, k), amounts (k,))``, then ``y = dry + amounts * (y - dry)``.
    """
    if x.untyped_storage().data_ptr() == out.untyped_storage().data_ptr():
        raise ValueError("x must not share memory with out: programs store y while others read x")
    channels, frames = x.shape
    width = state.shape[1] + frames
    dry, amounts = blend if blend is not None else (x, x)
    tiles = triton.cdiv(width, COLUMNS)
    _piece_kernel[(tiles,)](x, *x.stride(), state, state.stride(0), matrix, out, out.stride(0), ticket,
                            given(gain_in, x), given(gain_out, x), dry, *dry.stride(), amounts, channels, tiles,
                            GAIN_IN=gain_in is not None, GAIN_OUT=gain_out is not None, BLEND=blend is not None,
                            STATES=state.shape[1], WIDTH=width, BLOCK_C=triton.next_power_of_2(channels),
                            BLOCK_IN=triton.next_power_of_2(width), COLUMNS=COLUMNS, **chained(out))
    return out[:, state.shape[1]:]


if triton is not None:
    @triton.jit
    def _piece_kernel(x, x_stride, x_step, state, state_stride, matrix, out, out_stride, ticket, gain_in, gain_out,
                      dry, dry_stride, dry_step, amounts, channels, tiles, GAIN_IN: tl.constexpr,
                      GAIN_OUT: tl.constexpr, BLEND: tl.constexpr, STATES: tl.constexpr, WIDTH: tl.constexpr,
                      BLOCK_C: tl.constexpr, BLOCK_IN: tl.constexpr, COLUMNS: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        rows, inner = tl.arange(0, BLOCK_C), tl.arange(0, BLOCK_IN)
        live = (rows < channels)[:, None]
        is_state = live & (inner < STATES)[None, :]
        held = tl.load(state + rows[:, None] * state_stride + inner[None, :], mask=is_state, other=0.0)
        is_input = (inner >= STATES) & (inner < WIDTH)
        fresh = tl.load(x + rows[:, None] * x_stride + (inner - STATES)[None, :] * x_step,
                        mask=live & is_input[None, :], other=0.0)
        if GAIN_IN:
            fresh *= tl.load(gain_in + inner - STATES, mask=is_input, other=0.0)[None, :]
        row = held + fresh  # [s, x], zero beyond
        column = tl.program_id(0) * COLUMNS + tl.arange(0, COLUMNS)
        m = tl.load(matrix + inner[:, None] * WIDTH + column[None, :],
                    mask=(inner < WIDTH)[:, None] & (column < WIDTH)[None, :], other=0.0)
        result = tl.sum(row[:, :, None] * m[None, :, :], axis=1)  # (channels, COLUMNS) of [s', y]
        # y's gain and blend; the state's columns pass unchanged (gain 1, amount 1 from dry 0)
        is_output = (column >= STATES) & (column < WIDTH)
        if GAIN_OUT:
            result *= tl.load(gain_out + column - STATES, mask=is_output, other=1.0)[None, :]
        if BLEND:
            before = tl.load(dry + rows[:, None] * dry_stride + (column - STATES)[None, :] * dry_step,
                             mask=live & is_output[None, :], other=0.0)
            amount = tl.load(amounts + column - STATES, mask=is_output, other=1.0)[None, :]
            result = before + amount * (result - before)
        tl.store(out + rows[:, None] * out_stride + column[None, :], result, mask=live & (column < WIDTH)[None, :])
        tl.debug_barrier()  # every thread has read the state and stored its columns before the ticket
        if tl.atomic_add(ticket, 1, sem="acq_rel", scope="gpu") == tiles - 1:  # the last: s' into the state
            new = tl.load(out + rows[:, None] * out_stride + inner[None, :], mask=is_state, cache_modifier=".cg")
            tl.store(state + rows[:, None] * state_stride + inner[None, :], new, mask=is_state)
            tl.store(ticket, 0)
