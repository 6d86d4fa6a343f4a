"""One GPU kernel per block for the gate, the compressor and the de-esser (Triton), instead of
~30 torch ops.

The torch kernels of the dynamics effects turn their recursions into exact scans (``envelope.py``):
parallel, but about 35 small ops per block, and on a GPU each op costs ~2 us whatever its size.
Here each effect's whole block is one Triton program (one warp) that walks the block in tiles of
``TILE`` frames, everything in registers: the linked level of each frame, the recursions as
scans across the tile (``tl.associative_scan``: the level follower and release peaks as running
maxima of logs, as ``DecayingMax`` does; the latest frames above and below the thresholds as
running maxima of indices; the smoothers as ``fused.first_order``), each
picking up the state the tile before left, then the gain applied. (The recursions frame by
frame, scalar, through a per-frame scratch took 9.6 us a block for the gate on an H100, inside
the guitar rack's graph.) The states live in the same tensors as the torch kernels' (for
example ``DecayingMax._carried``, ``LatestIndex.state``, ``Smoother.state``), so ``reset``, the
meters and the controls work unchanged.

Triton is optional (``fused.available``). ``tests/test_fused_dynamics.py`` checks these kernels
against the torch kernels.
"""
from __future__ import annotations

import math

import torch

from .fused import chained, first_order, follow, given, larger, tl, triton

TILE = 64  # frames per tile
WARPS = 1  # one warp: the scans stay within it


def _launch_shape(x: torch.Tensor) -> dict:
    return dict(frames=x.shape[-1], channels=x.shape[0], BLOCK_C=triton.next_power_of_2(x.shape[0]), TILE=TILE,
                num_warps=WARPS, **chained(x))


def gate(effect, x: torch.Tensor, out: torch.Tensor, blend: torch.Tensor | None) -> torch.Tensor:
    """The block of a ``Gate`` (``x`` ``(channels, frames)`` float32) into ``out``; returns ``out``.
    ``blend``: the ``(frames,)`` wet amounts to blend ``x`` in with, or None (wet only)."""
    _gate_kernel[(1,)](
        x, out, *x.stride(), out.stride(0), effect._follower._carried, effect._follower._table[1:],
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
        low, *low.stride(), out, out.stride(0), peak._carried, peak._table[1:], smooth.state,
        smooth._carry, smooth._fall, *curve,
        given(makeup, x), given(blend, x), SOFT_KNEE=soft_knee, SPLIT=split, SIDE_SWITCH=side_on is not None,
        MAKEUP=makeup is not None, BLEND=blend is not None, **_launch_shape(x))
    return out


if triton is not None:
    PER_DB = tl.constexpr(math.log(10) / 20)  # natural-log units per dB of amplitude
    LOG10 = tl.constexpr(math.log(10))
    NEVER = tl.constexpr(-(2**62))  # LatestIndex.NEVER: no such frame yet

    @triton.jit
    def _decaying_max(values, at, frames, log_decay, best):
        """``y[n] = max(values[n], a * y[n-1])`` over a tile at frames ``at`` of the block, as
        ``DecayingMax``: ``log y[n] = n log a + max(best, running max of log values[k] - k log a)``.
        ``best``: that maximum before the tile (``log(a * y[-1])`` at the block's start).
        Returns ``y`` (float64) and the maximum after the tile."""
        steps = at.to(tl.float64) * log_decay
        keys = tl.where(at < frames, tl.log(values.to(tl.float64)) - steps, -float("inf"))
        running = tl.maximum(tl.associative_scan(keys, 0, larger), best)
        return tl.exp(steps + running), tl.max(running, 0)

    @triton.jit
    def _latest(marked, at, frames, latest):
        """For each frame of a tile, the latest frame (block index) at or before it where
        ``marked`` held, or ``latest`` (the one before the tile) if none did."""
        keys = tl.where(marked & (at < frames), at.to(tl.int64), NEVER)
        return tl.maximum(tl.associative_scan(keys, 0, larger), latest)

    @triton.jit
    def _one_pole(scale, shift, at, frames, TILE: tl.constexpr, state):
        """``y[n] = scale[n] * y[n-1] + shift[n]`` over a tile from ``y[-1] = state``. Returns
        ``y`` and its last value (frames past ``frames`` leave ``y`` as it is)."""
        y = first_order(scale, shift, at < frames, state, AXIS=0)
        return y, tl.sum(tl.where(tl.arange(0, TILE) == TILE - 1, y, 0.0), 0)

    @triton.jit
    def _applied(dry, base, reduction_db, at, frames, makeup, blend, SPLIT: tl.constexpr, MAKEUP: tl.constexpr,
                 BLEND: tl.constexpr):
        """A tile ``dry`` ``(channels, TILE)`` times ``exp(-reduction)`` (dB, per frame).

        ``SPLIT``: the gain applies to ``dry - base`` and ``base`` is added back. ``MAKEUP``: a
        per-frame gain (natural-log units) added. ``BLEND``: ``dry + blend * (result - dry)``.
        """
        exponent = reduction_db * -PER_DB
        if MAKEUP:
            exponent += tl.load(makeup + at, mask=at < frames, other=0.0)
        factor = tl.exp(exponent).to(tl.float32)[None, :]
        if SPLIT:
            result = (dry - base) * factor + base
        else:
            result = dry * factor
        if BLEND:
            result = dry + tl.load(blend + at, mask=at < frames, other=0.0)[None, :] * (result - dry)
        return result

    @triton.jit
    def _gate_kernel(x, out, x_stride, x_step, out_stride, follower, log_decay, last_above, last_below,
                     last_open, reduction, open_level, close_level, hold, coefs, drives, blend,
                     frames, channels, BLEND: tl.constexpr, BLOCK_C: tl.constexpr, TILE: tl.constexpr,
                     PDL: tl.constexpr):
        """Level follower -> open/close with hysteresis and hold -> smoothed reduction -> gain."""
        follow(PDL)
        rows, cols = tl.arange(0, BLOCK_C), tl.arange(0, TILE)
        log_a, best = tl.load(log_decay), tl.load(follower)
        above_at, below_at, open_at = tl.load(last_above), tl.load(last_below), tl.load(last_open)
        gain_db = tl.load(reduction)
        opens, closes, hold_frames = tl.load(open_level), tl.load(close_level), tl.load(hold)
        attack, release = tl.load(coefs), tl.load(coefs + 1)
        drive_open, drive_closed = tl.load(drives), tl.load(drives + 1)
        for start in range(0, frames, TILE):
            at = start + cols
            inside = (rows[:, None] < channels) & (at[None, :] < frames)
            dry = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
            level, best = _decaying_max(tl.max(tl.abs(dry), axis=0), at, frames, log_a, best)
            above = _latest(level > opens, at, frames, above_at)
            below = _latest(level < closes, at, frames, below_at)
            opened = _latest(above > below, at, frames, open_at)
            held_open = at.to(tl.int64) - opened <= hold_frames
            above_at, below_at, open_at = tl.max(above, 0), tl.max(below, 0), tl.max(opened, 0)
            reductions, gain_db = _one_pole(tl.where(held_open, attack, release),
                                            tl.where(held_open, drive_open, drive_closed), at, frames, TILE, gain_db)
            wet = _applied(dry, dry, reductions, at, frames, x, blend, SPLIT=False, MAKEUP=False, BLEND=BLEND)
            tl.store(out + rows[:, None] * out_stride + at[None, :], wet, mask=inside)
        tl.store(follower, frames * log_a + best)
        tl.store(last_above, above_at - frames)
        tl.store(last_below, below_at - frames)
        tl.store(last_open, open_at - frames)
        tl.store(reduction, gain_db)

    @triton.jit
    def _level_gain_kernel(x, x_stride, x_step, side, side_stride, side_step, side_on, low, low_stride, low_step,
                           out, out_stride, peak_carried, log_decay, smooth_state, smooth_carry,
                           smooth_fall, curve_a, curve_b, curve_c, curve_d, makeup, blend, frames, channels,
                           SOFT_KNEE: tl.constexpr, SPLIT: tl.constexpr, SIDE_SWITCH: tl.constexpr,
                           MAKEUP: tl.constexpr, BLEND: tl.constexpr, BLOCK_C: tl.constexpr, TILE: tl.constexpr,
                           PDL: tl.constexpr):
        """Level in dB -> static curve -> release peak -> attack smoothing -> gain, per sample.

        Curves: ``SOFT_KNEE`` (the compressor's: knee start, width, slope, knee slope) or a
        clamp of ``level - a`` to ``[0, b]`` (the de-esser's threshold and range). ``SPLIT``:
        the gain applies to ``x - low`` (also the detector's input) and ``low`` is added back.
        ``SIDE_SWITCH``: the detector reads ``side`` only while ``side_on`` holds, else ``x``.
        ``MAKEUP``, ``BLEND``: see ``_applied``.
        """
        follow(PDL)
        rows, cols = tl.arange(0, BLOCK_C), tl.arange(0, TILE)
        a, b, c, d = tl.load(curve_a), tl.load(curve_b), tl.load(curve_c), tl.load(curve_d)
        log_a, best = tl.load(log_decay), tl.load(peak_carried)  # the release peak's
        smoothed, keep, take = tl.load(smooth_state), tl.load(smooth_carry), tl.load(smooth_fall)  # c and 1 - c
        for start in range(0, frames, TILE):
            at = start + cols
            inside = (rows[:, None] < channels) & (at[None, :] < frames)
            dry = tl.load(x + rows[:, None] * x_stride + at[None, :] * x_step, mask=inside, other=0.0)
            base = dry
            if SPLIT:
                base = tl.load(low + rows[:, None] * low_stride + at[None, :] * low_step, mask=inside, other=0.0)
                detected = dry - base
            else:
                detected = tl.load(side + rows[:, None] * side_stride + at[None, :] * side_step, mask=inside, other=0.0)
                if SIDE_SWITCH:
                    detected = tl.where(tl.load(side_on) != 0, detected, dry)
            peak_level = tl.maximum(tl.max(tl.abs(detected), axis=0), 1e-10)
            level_db = (tl.log(peak_level) * (20.0 / LOG10)).to(tl.float64)
            if SOFT_KNEE:  # d + W/2 = level - a; W = b
                in_knee = tl.minimum(tl.maximum(level_db - a, 0.0), b)
                target = tl.maximum(level_db - a - b, 0.0) * c + in_knee * in_knee * d
            else:
                target = tl.minimum(tl.maximum(level_db - a, 0.0), b)
            peak, best = _decaying_max(target, at, frames, log_a, best)
            reductions, smoothed = _one_pole(keep, take * peak, at, frames, TILE, smoothed)
            wet = _applied(dry, base, reductions, at, frames, makeup, blend, SPLIT=SPLIT, MAKEUP=MAKEUP, BLEND=BLEND)
            tl.store(out + rows[:, None] * out_stride + at[None, :], wet, mask=inside)
        tl.store(peak_carried, frames * log_a + best)
        tl.store(smooth_state, smoothed)
