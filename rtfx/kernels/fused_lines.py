"""One GPU kernel per block for a reverb's pre-delay, the echo delay and a latency effect's
delayed dry mix (Triton), instead of ten, fifteen and three torch ops.

In a CUDA graph ``PreDelay`` writes the block into its ring and reads it back at two delays
(the new one and, while a crossfade runs, the old one) with ring indices computed on the device:
three small kernels per access, plus the crossfade. Here one program per channel stores the
block at ``(origin + t) % length``, waits for every store of its row (a barrier: a delay shorter
than the block reads samples of this block), then reads both delays and crossfades them. The
echo (``echo``) runs the whole loop of ``Delay`` in one program; ``delayed_mix`` blends the wet
block with the dry one read through a ``FixedDelay``'s history. ``tests/test_fused_lines.py``
checks them against the torch paths.
"""
from __future__ import annotations

import torch

from .fused import chained, first_order, follow, given, tl, triton

TILE = 128  # frames per tile
WARPS = 4  # (the echo: 7.3 us a 64-frame block with one warp, 4.8 with four; H100)


def predelay(ring: torch.Tensor, origin: torch.Tensor, reads: torch.Tensor, weights: torch.Tensor,
             x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write ``x`` ``(C, n)`` into ``ring`` ``(C, length)`` from ring index ``origin`` ``(1,)``
    on; ``out`` ``(C, n)`` gets ``old + weights * (new - old)``, the reads from ring indices
    ``reads`` ``[new, old]`` on (int64, ``>= 0``). Returns ``out``."""
    channels, frames = x.shape
    _predelay_kernel[(channels,)](x, *x.stride(), ring, ring.stride(0), ring.shape[1], origin, reads, weights,
                                  out, out.stride(0), frames, TILE=TILE, num_warps=WARPS, **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _predelay_kernel(x, x_stride, x_step, ring, ring_stride, length, origin, reads, weights, out, out_stride,
                         frames, TILE: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
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


def echo(effect, x: torch.Tensor, out: torch.Tensor, blend: torch.Tensor | None) -> torch.Tensor:
    """The wet block of a capture-mode ``Delay`` (``x`` ``(C, n)`` float32) into ``out``; returns
    ``out``. Reads the effect's line, heads, fade, feedback and low-pass by name: the same state
    tensors as its torch kernels. ``blend``: the ``(n,)`` wet amounts to blend ``x`` in with, or
    None (wet only)."""
    line, heads, lowpass = effect._line, effect._heads, effect._lowpass
    channels, frames = x.shape
    _echo_kernel[(1,)](
        x, *x.stride(), out, out.stride(0), line.buffer, line.buffer.stride(0), line.size, line._write_index.tensor,
        heads._first.tensor, heads._weights.tensor, effect._fade.tensor, effect._feedback_ramp.tensor,
        lowpass._powers, lowpass._state, given(blend, x),
        frames, channels, effect._chunk, PING_PONG=effect.ping_pong, BLEND=blend is not None,
        BLOCK_C=triton.next_power_of_2(channels), CHUNK=triton.next_power_of_2(effect._chunk),
        TAPS=line.taps, num_warps=WARPS, **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _echo_kernel(x, x_stride, x_step, out, out_stride, ring, ring_stride, size, write_index, first, tap_weights,
                     fade, feedback, powers, state, blend, frames, channels, chunk,
                     PING_PONG: tl.constexpr, BLEND: tl.constexpr,
                     BLOCK_C: tl.constexpr, CHUNK: tl.constexpr, TAPS: tl.constexpr, PDL: tl.constexpr):
        """``Delay._process_pieces`` in one program: per piece of ``chunk`` frames, two heads read
        and crossfaded (the output), the one-pole low-pass (a scan along the piece), the
        feedback gain, the routing (ping-pong: each row's echo to the next row, the input's mean into row 0)
        and the write into the ring; a barrier before the next piece reads what it wrote.
        ``BLEND``: then the output becomes ``x + blend * (wet - x)``."""
        follow(PDL)
        rows, cols, taps = tl.arange(0, BLOCK_C), tl.arange(0, CHUNK), tl.arange(0, TAPS)
        live = rows < channels
        pole = tl.load(powers)  # a (the first power of the pole)
        last = tl.load(state + rows, mask=live, other=0.0)  # the low-pass's previous output
        weights_new, weights_old = tl.load(tap_weights + taps), tl.load(tap_weights + TAPS + taps)
        first_new, first_old = tl.load(first), tl.load(first + 1)
        for begin in range(0, frames, chunk):
            at = begin + cols
            length = tl.minimum(chunk, frames - begin)
            inside = live[:, None] & (cols < length)[None, :]
            reach = at[:, None] + taps[None, :]  # (frame, tap) from the block's first tap
            lines = ring + rows[:, None, None] * ring_stride
            head = tl.sum(tl.load(lines + ((first_new + reach) % size)[None, :, :], mask=inside[:, :, None],
                                  other=0.0) * weights_new[None, None, :], axis=2)
            other = tl.sum(tl.load(lines + ((first_old + reach) % size)[None, :, :], mask=inside[:, :, None],
                                   other=0.0) * weights_old[None, None, :], axis=2)
            wet = head + tl.load(fade + at, mask=cols < length, other=0.0)[None, :] * (other - head)
            filtered = first_order(pole, (1.0 - pole) * wet, inside, last[:, None], AXIS=1)  # the low-pass
            last = tl.sum(tl.where(cols[None, :] == CHUNK - 1, filtered, 0.0), axis=1)
            fed = filtered * tl.load(feedback + at, mask=cols < length, other=0.0)[None, :]
            dry = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
            if BLEND:
                amount = tl.load(blend + at, mask=cols < length, other=0.0)[None, :]
                tl.store(out + rows[:, None] * out_stride + at[None, :], dry + amount * (wet - dry), mask=inside)
            else:
                tl.store(out + rows[:, None] * out_stride + at[None, :], wet, mask=inside)
            if PING_PONG:
                source = tl.where(rows == 0, channels - 1, rows - 1)  # the row whose echo each row takes
                moved = tl.sum(tl.where((rows[None, :] == source[:, None])[:, :, None], fed[None, :, :], 0.0), axis=1)
                mono = tl.sum(dry, axis=0) / channels
                fed = moved + tl.where(rows[:, None] == 0, mono[None, :], 0.0)
            else:
                fed = dry + fed
            slots = tl.load(write_index + at, mask=cols < length, other=0)
            tl.store(ring + rows[:, None] * ring_stride + slots[None, :], fed, mask=inside)
            tl.debug_barrier()  # the next piece may read this one's samples
        tl.store(state + rows, last, mask=live)


def delayed_mix(delay, dry: torch.Tensor, wet: torch.Tensor, weights: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = lerp(dry delayed, wet, weights)`` for ``(C, n)`` blocks, through the history of a
    ``FixedDelay`` (``delay``, which it updates as ``delay.process(dry)`` would); returns ``out``."""
    channels, frames = dry.shape
    history = delay._history
    _delayed_mix_kernel[(channels,)](dry, *dry.stride(), wet, wet.stride(0), weights, history, history.stride(0),
                                     out, out.stride(0), frames, delay.delay, TILE=TILE, num_warps=WARPS,
                                     **chained(out))
    return out


if triton is not None:
    @triton.jit
    def _delayed_mix_kernel(dry, dry_stride, dry_step, wet, wet_stride, weights, history, history_stride, out,
                            out_stride, frames, delay, TILE: tl.constexpr, PDL: tl.constexpr):
        """One program per channel: the mix (the delayed dry is ``[history, dry][t]``), then the
        history moves on by ``frames`` (a forward copy in tiles, each read before its writes)."""
        follow(PDL)
        channel = tl.program_id(0)
        dry += channel * dry_stride
        wet += channel * wet_stride
        history += channel * history_stride
        out += channel * out_stride
        for start in range(0, frames, TILE):
            t = start + tl.arange(0, TILE)
            old = tl.load(history + t, mask=t < tl.minimum(delay, frames), other=0.0)
            new = tl.load(dry + (t - delay) * dry_step, mask=(t >= delay) & (t < frames), other=0.0)
            late = old + new
            weight = tl.load(weights + t, mask=t < frames)
            tl.store(out + t, late + weight * (tl.load(wet + t, mask=t < frames) - late), mask=t < frames)
        tl.debug_barrier()
        for start in range(0, delay, TILE):
            i = start + tl.arange(0, TILE)
            kept = tl.load(history + i + frames, mask=i + frames < delay, other=0.0)
            kept += tl.load(dry + (i + frames - delay) * dry_step, mask=(i + frames >= delay) & (i < delay), other=0.0)
            tl.debug_barrier()
            tl.store(history + i, kept, mask=i < delay)
