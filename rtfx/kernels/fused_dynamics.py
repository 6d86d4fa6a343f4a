"""One GPU kernel per block for the gate, the compressor and the de-esser (Triton), instead of
~30 torch ops.

The torch kernels of the dynamics effects turn their recursions into exact scans (``envelope.py``):
parallel, but about 35 small ops per block, and on a GPU each op costs ~2 us whatever its size.
Here each effect's whole block is one Triton program (one warp) in three passes: the level (or
the curve's target) of every frame, in tiles, into a per-frame scratch (``scratch``); the
recursions frame by frame, scalar, each reading its frame's level and writing its reduction
back in place (the gate loads the next frame's level while a frame computes: 6.6 -> 6.3 us on an
H100; the same in the compressor's shorter loop and the echo's low-pass made them slower, 4.0 ->
5.5 and 4.9 -> 5.6 us); the gains applied, in tiles. A barrier separates the passes. (Picking a frame
out of a tile held in registers took a reduction per frame: 14-16 us a block on an H100,
against ~2 us of scalar loads.) The states live in the same tensors as the torch kernels' (for example
``DecayingMax._carried``, ``LatestIndex.state``, ``Smoother.state``), so ``reset``, the meters
and the controls work unchanged.

Triton is optional (``fused.available``). ``tests/test_fused_dynamics.py`` checks these kernels
against the torch kernels.
"""
from __future__ import annotations

import math

import torch

from .fused import chained, follow, given, tl, triton

TILE = 64  # frames per tile of the per-frame passes
WARPS = 1  # one warp: the recursions are scalar, and its barriers cost least


def scratch(spec) -> torch.Tensor:
    """The per-frame values (``(blocksize,)`` float64) a fused effect's recursions go through."""
    return torch.zeros(spec.blocksize, dtype=torch.float64, device=spec.device)


def _launch_shape(x: torch.Tensor) -> dict:
    return dict(frames=x.shape[-1], channels=x.shape[0], BLOCK_C=triton.next_power_of_2(x.shape[0]), TILE=TILE,
                num_warps=WARPS, **chained(x))


def gate(effect, x: torch.Tensor, out: torch.Tensor, blend: torch.Tensor | None) -> torch.Tensor:
    """The block of a ``Gate`` (``x`` ``(channels, frames)`` float32) into ``out``; returns ``out``.
    ``blend``: the ``(frames,)`` wet amounts to blend ``x`` in with, or None (wet only)."""
    _gate_kernel[(1,)](
        x, out, *x.stride(), out.stride(0), effect._sequence,
        effect._follower._carried, effect._follower._table[1:],
        effect._last_above.state, effect._last_below.state, effect._last_open.state, effect._smoother.state,
        effect._open_level.tensor, effect._close_level.tensor, effect._hold_frames.tensor,
        effect._coefs.tensor, effect._drives.tensor, given(blend, x), BLEND=blend is not None, **_launch_shape(x))
    return out


def compressor(effect, x: torch.Tensor, side: torch.Tensor, side_on: torch.Tensor | None, out: torch.Tensor,
               blend: torch.Tensor | None) -> torch.Tensor:
    """The block of a ``Compressor``: levels from ``side`` (the high-passed detector input;
    ``x`` itself where the ``(1,)`` bool ``side_on`` is false), gain applied to ``x`` (both
    ``(channels, frames)`` float32), into ``out``; returns ``out``. ``blend`` as for ``gate``."""
    curve = effect._curve
    limits = (curve._knee_start.tensor, curve._width.tensor, curve._slope.tensor, curve._knee_slope.tensor)
    return _level_gain(effect, x, side, side_on, x, out, limits, effect._gain._makeup.tensor, blend, soft_knee=True)


def deesser(effect, x: torch.Tensor, low: torch.Tensor, out: torch.Tensor, blend: torch.Tensor | None) -> torch.Tensor:
    """The block of a ``DeEsser``: ``x`` and its low band ``low`` (``(channels, frames)``
    float32) to ``low + gain * (x - low)`` in ``out``; returns ``out``. ``blend`` as for ``gate``."""
    limits = (effect._threshold.tensor, effect._range.tensor) * 2
    return _level_gain(effect, x, x, None, low, out, limits, None, blend, soft_knee=False, split=True)


def _level_gain(effect, x, side, side_on, low, out, curve, makeup, blend, soft_knee: bool, split: bool = False):
    """Launch ``_level_gain_kernel`` for an effect whose ``_smoother`` is an ``AttackRelease``;
    ``side_on``, ``makeup`` (a per-frame gain control) and ``blend``: tensors, or None."""
    peak, smooth = effect._smoother._peak, effect._smoother._smooth
    _level_gain_kernel[(1,)](
        x, *x.stride(), side, *side.stride(), x if side_on is None else side_on.view(torch.uint8),
        low, *low.stride(), out, out.stride(0), effect._sequence, peak._carried, peak._table[1:], smooth.state,
        smooth._carry, smooth._fall, *curve,
        given(makeup, x), given(blend, x), SOFT_KNEE=soft_knee, SPLIT=split, SIDE_SWITCH=side_on is not None,
        MAKEUP=makeup is not None, BLEND=blend is not None, **_launch_shape(x))
    return out


if triton is not None:
    PER_DB = tl.constexpr(math.log(10) / 20)  # natural-log units per dB of amplitude
    LOG10 = tl.constexpr(math.log(10))

    @triton.jit
    def _gains_applied(x, x_stride, x_step, low, low_stride, low_step, out, out_stride, sequence, makeup, blend,
                       frames, channels, SPLIT: tl.constexpr, MAKEUP: tl.constexpr, BLEND: tl.constexpr,
                       BLOCK_C: tl.constexpr, TILE: tl.constexpr):
        """The last pass: ``x`` times ``exp(-reduction)`` (dB reductions in ``sequence``), in tiles.

        ``SPLIT``: the gain applies to ``x - low`` and ``low`` is added back. ``MAKEUP``: a
        per-frame gain (natural-log units) added. ``BLEND``: ``x + blend * (result - x)``.
        """
        rows, cols = tl.arange(0, BLOCK_C), tl.arange(0, TILE)
        for start in range(0, frames, TILE):
            at = start + cols
            inside = (rows[:, None] < channels) & (at[None, :] < frames)
            dry = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
            tile = dry
            if SPLIT:
                base = tl.load(low + rows[:, None] * low_stride + at[None, :] * low_step, mask=inside, other=0.0)
                tile -= base
            exponent = tl.load(sequence + at, mask=at < frames, other=0.0) * -PER_DB
            if MAKEUP:
                exponent += tl.load(makeup + at, mask=at < frames, other=0.0)
            result = tile * tl.exp(exponent).to(tl.float32)[None, :]
            if SPLIT:
                result += base
            if BLEND:
                result = dry + tl.load(blend + at, mask=at < frames, other=0.0)[None, :] * (result - dry)
            tl.store(out + rows[:, None] * out_stride + at[None, :], result, mask=inside)

    @triton.jit
    def _gate_kernel(x, out, x_stride, x_step, out_stride, sequence, follower, log_decay, last_above, last_below,
                     last_open, reduction, open_level, close_level, hold, coefs, drives, blend,
                     frames, channels, BLEND: tl.constexpr, BLOCK_C: tl.constexpr, TILE: tl.constexpr,
                     PDL: tl.constexpr):
        follow(PDL)
        rows, cols = tl.arange(0, BLOCK_C), tl.arange(0, TILE)
        for start in range(0, frames, TILE):  # the level of each frame: its loudest channel
            at = start + cols
            inside = (rows[:, None] < channels) & (at[None, :] < frames)
            tile = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
            tl.store(sequence + at, tl.max(tl.abs(tile), axis=0).to(tl.float64), mask=at < frames)
        tl.debug_barrier()
        decay = tl.exp(tl.load(log_decay))
        carried = tl.exp(tl.load(follower))  # a * y[n-1] of the level follower
        above_at, below_at, open_at = tl.load(last_above), tl.load(last_below), tl.load(last_open)
        gain_db = tl.load(reduction)
        opens, closes, hold_frames = tl.load(open_level), tl.load(close_level), tl.load(hold)
        attack, release = tl.load(coefs), tl.load(coefs + 1)
        drive_open, drive_closed = tl.load(drives), tl.load(drives + 1)
        level = tl.load(sequence)
        for n in range(0, frames):  # the recursions, frame by frame: level in, reduction out
            following = tl.load(sequence + n + 1, mask=n + 1 < frames, other=0.0)  # in flight meanwhile
            peak = tl.maximum(level, carried)
            carried = decay * peak
            now = tl.cast(n, tl.int64)
            above_at = tl.where(peak > opens, now, above_at)
            below_at = tl.where(peak < closes, now, below_at)
            open_at = tl.where(above_at > below_at, now, open_at)
            held_open = now - open_at <= hold_frames
            gain_db = tl.where(held_open, attack, release) * gain_db + tl.where(held_open, drive_open, drive_closed)
            tl.store(sequence + n, gain_db)
            level = following
        tl.debug_barrier()
        _gains_applied(x, x_stride, x_step, x, x_stride, x_step, out, out_stride, sequence, x, blend, frames, channels,
                       SPLIT=False, MAKEUP=False, BLEND=BLEND, BLOCK_C=BLOCK_C, TILE=TILE)
        tl.store(follower, tl.log(carried))
        tl.store(last_above, above_at - frames)
        tl.store(last_below, below_at - frames)
        tl.store(last_open, open_at - frames)
        tl.store(reduction, gain_db)

    @triton.jit
    def _level_gain_kernel(x, x_stride, x_step, side, side_stride, side_step, side_on, low, low_stride, low_step,
                           out, out_stride, sequence, peak_carried, log_decay, smooth_state, smooth_carry,
                           smooth_fall, curve_a, curve_b, curve_c, curve_d, makeup, blend, frames, channels,
                           SOFT_KNEE: tl.constexpr, SPLIT: tl.constexpr, SIDE_SWITCH: tl.constexpr,
                           MAKEUP: tl.constexpr, BLEND: tl.constexpr, BLOCK_C: tl.constexpr, TILE: tl.constexpr,
                           PDL: tl.constexpr):
        """Level in dB -> static curve -> release peak -> attack smoothing -> gain, per sample.

        Curves: ``SOFT_KNEE`` (the compressor's: knee start, width, slope, knee slope) or a
        clamp of ``level - a`` to ``[0, b]`` (the de-esser's threshold and range). ``SPLIT``:
        the gain applies to ``x - low`` (also the detector's input) and ``low`` is added back.
        ``SIDE_SWITCH``: the detector reads ``side`` only while ``side_on`` holds, else ``x``.
        ``MAKEUP``, ``BLEND``: see ``_gains_applied``.
        """
        follow(PDL)
        rows, cols = tl.arange(0, BLOCK_C), tl.arange(0, TILE)
        a, b, c, d = tl.load(curve_a), tl.load(curve_b), tl.load(curve_c), tl.load(curve_d)
        for start in range(0, frames, TILE):  # the curve's target reduction of each frame
            at = start + cols
            inside = (rows[:, None] < channels) & (at[None, :] < frames)
            if SPLIT:
                detected = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
                detected -= tl.load(low + rows[:, None] * low_stride + at[None, :] * low_step, mask=inside, other=0.0)
            else:
                detected = tl.load(side + rows[:, None] * side_stride + at[None, :] * side_step, mask=inside, other=0.0)
                if SIDE_SWITCH:
                    dry = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
                    detected = tl.where(tl.load(side_on) != 0, detected, dry)
            peak_level = tl.maximum(tl.max(tl.abs(detected), axis=0), 1e-10)
            level_db = (tl.log(peak_level) * (20.0 / LOG10)).to(tl.float64)
            if SOFT_KNEE:  # d + W/2 = level - a; W = b
                in_knee = tl.minimum(tl.maximum(level_db - a, 0.0), b)
                target = tl.maximum(level_db - a - b, 0.0) * c + in_knee * in_knee * d
            else:
                target = tl.minimum(tl.maximum(level_db - a, 0.0), b)
            tl.store(sequence + at, target, mask=at < frames)
        tl.debug_barrier()
        decay = tl.exp(tl.load(log_decay))
        carried = tl.exp(tl.load(peak_carried))  # a * p[n-1] of the release peak
        smoothed = tl.load(smooth_state)
        keep, take = tl.load(smooth_carry), tl.load(smooth_fall)  # c and 1 - c
        for n in range(0, frames):  # the recursions, frame by frame: target in, reduction out
            peak = tl.maximum(tl.load(sequence + n), carried)
            carried = decay * peak
            smoothed = keep * smoothed + take * peak
            tl.store(sequence + n, smoothed)
        tl.debug_barrier()
        _gains_applied(x, x_stride, x_step, low, low_stride, low_step, out, out_stride, sequence, makeup, blend,
                       frames, channels, SPLIT=SPLIT, MAKEUP=MAKEUP, BLEND=BLEND, BLOCK_C=BLOCK_C, TILE=TILE)
        tl.store(peak_carried, tl.log(carried))
        tl.store(smooth_state, smoothed)
