"""One GPU kernel per block for the look-ahead limiter (Triton), instead of ~30 torch ops.

``Limiter._process`` on the torch path: the drive gain, the linked level in dB, the look-ahead
sliding maximum, the exponential release (a scan), the moving average (prefix sums), the
delayed audio times the gain, the ceiling clamp and the shifts of three histories, each a
small op (~2 us apiece in a graph). Here one program does the block in passes separated by
barriers: (1) the driven audio into the delay line and each frame's needed reduction into its
history; (2) the sliding maximum over ``lag + 1`` values, in tiles; (3) the release, frame by
frame, scalar (as the gate's kernel); (4) the moving average over ``lag + 1`` values and the
gain on the delayed audio, clamped; (5) the histories moved on by the block, a forward copy in
tiles (each read before its writes). The states are the torch path's own tensors, so
``reset``, the meter (``gain_reduction_db``) and the controls work unchanged.
``tests/test_fused_limiter.py`` checks it against the torch path.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, tl, triton

TILE = 64  # frames per tile
SPAN = 64  # look-ahead values per step of the sliding maximum and the average
#: Two warps. The release is scalar, so fewer warps cost less at the barriers, but with one warp
#: Triton 3.6 compiled the tiled window maxima wrong on an H100 (some rows missed the window's
#: last value, depending on the data); the interpreter runs it right either way.
WARPS = 2


def limiter(effect, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The block of a ``Limiter`` (``x`` ``(channels, frames)`` float32) into ``out`` (same
    shape); returns ``out``."""
    channels, frames = x.shape
    drive = effect._drive
    _limiter_kernel[(1,)](
        x, *x.stride(), out, out.stride(0), drive._ramp.tensor, effect._needed, effect._held, effect._audio,
        effect._audio.stride(0), effect._window, effect._average, effect._release._carried,
        effect._release._table[1:], effect._gain._makeup.tensor, effect._floor.tensor, effect._ceiling.tensor,
        frames, channels, effect.latency, DRIVE=not (drive._unity and not drive._always),
        BLOCK_C=triton.next_power_of_2(channels), TILE=TILE, SPAN=SPAN, num_warps=WARPS, **chained(out))
    return out


if triton is not None:
    from .fused_dynamics import LOG10, PER_DB

    @triton.jit
    def _limiter_kernel(x, x_stride, x_step, out, out_stride, drive, needed, held, audio, audio_stride, window,
                        average, carried_log, log_decay, makeup, floor, ceiling, frames, channels, lag,
                        DRIVE: tl.constexpr, BLOCK_C: tl.constexpr, TILE: tl.constexpr, SPAN: tl.constexpr,
                        PDL: tl.constexpr):
        follow(PDL)
        rows, cols, span = tl.arange(0, BLOCK_C), tl.arange(0, TILE), tl.arange(0, SPAN)
        live = rows < channels
        for start in range(0, frames, TILE):  # (1) driven audio and the reduction each frame needs
            at = start + cols
            inside = live[:, None] & (at < frames)[None, :]
            driven = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
            if DRIVE:
                driven *= tl.load(drive + at, mask=at < frames, other=0.0)[None, :]
            tl.store(audio + rows[:, None] * audio_stride + lag + at[None, :], driven, mask=inside)
            peak = tl.maximum(tl.max(tl.abs(driven), axis=0), 1e-10)
            level_db = tl.maximum(tl.log(peak) * (20.0 / LOG10), 0.0)
            tl.store(needed + lag + at, level_db.to(tl.float64), mask=at < frames)
        tl.debug_barrier()
        for start in range(0, frames, TILE):  # (2) the look-ahead maximum over lag + 1 values
            at = start + cols
            highest = tl.zeros([TILE], dtype=tl.float64)  # reductions are >= 0
            for first in range(0, lag + 1, SPAN):
                k = first + span
                values = tl.load(needed + at[:, None] + k[None, :], mask=(at < frames)[:, None] & (k <= lag)[None, :],
                                 other=0.0)
                highest = tl.maximum(highest, tl.max(values, axis=1))
            tl.store(window + at, highest, mask=at < frames)
        tl.debug_barrier()
        decay = tl.exp(tl.load(log_decay))
        carried = tl.exp(tl.load(carried_log))  # a * h[n-1]
        for n in range(0, frames):  # (3) the release, frame by frame
            h = tl.maximum(tl.load(window + n), carried)
            tl.store(held + lag + n, h)
            carried = decay * h
        tl.store(carried_log, tl.log(carried))
        tl.debug_barrier()
        low, high = tl.load(floor), tl.load(ceiling)
        for start in range(0, frames, TILE):  # (4) the moving average, the gain, the clamp
            at = start + cols
            total = tl.zeros([TILE], dtype=tl.float64)
            for first in range(0, lag + 1, SPAN):
                k = first + span
                values = tl.load(held + at[:, None] + k[None, :], mask=(at < frames)[:, None] & (k <= lag)[None, :],
                                 other=0.0)
                total += tl.sum(values, axis=1)
            mean = total / (lag + 1)
            tl.store(average + at, mean, mask=at < frames)
            exponent = mean * -PER_DB + tl.load(makeup + at, mask=at < frames, other=0.0)
            gain = tl.exp(exponent).to(tl.float32)
            inside = live[:, None] & (at < frames)[None, :]
            delayed = tl.load(audio + rows[:, None] * audio_stride + at[None, :], mask=inside, other=0.0)
            limited = tl.minimum(tl.maximum(delayed * gain[None, :], low), high)
            tl.store(out + rows[:, None] * out_stride + at[None, :], limited, mask=inside)
        tl.debug_barrier()
        for start in range(0, lag, TILE):  # (5) the newest lag values of each history move to its front
            at = start + cols
            keep = at < lag
            inside = live[:, None] & keep[None, :]
            moved_needed = tl.load(needed + frames + at, mask=keep, other=0.0)
            moved_held = tl.load(held + frames + at, mask=keep, other=0.0)
            moved_audio = tl.load(audio + rows[:, None] * audio_stride + frames + at[None, :], mask=inside, other=0.0)
            tl.debug_barrier()  # read before any write (the ranges overlap when frames < lag)
            tl.store(needed + at, moved_needed, mask=keep)
            tl.store(held + at, moved_held, mask=keep)
            tl.store(audio + rows[:, None] * audio_stride + at[None, :], moved_audio, mask=inside)
