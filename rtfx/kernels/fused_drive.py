"""Two GPU kernels per block for a drive's gain, up-sampling, waveshaper and down-sampling
(Triton), instead of ~20 torch ops.

The same filters as ``oversample.Oversampler`` (``halfband_taps``: ``N = K L + 1`` taps, ``L`` the
factor, ``K`` the latency in base frames), written as sums instead of Toeplitz GEMMs, over two
rings: ``inputs`` (the driven input ``u = g x``) and ``shaped`` (the shaper's output ``v``), whose
write positions for the block the host sets (``before_block``), so nothing ever moves:

1. ``_up_kernel``, a program per channel and ``TILE`` high-rate samples:
   ``v[L t + p] = f(L sum_j h[p + L j] u[t - j] + bias) - f(bias)`` (``j = 0..K``), ``u`` from the
   ring before the block and from ``g x`` within it; the first program also stores the block's
   ``u`` in the ring.
2. ``_down_kernel``, a program per channel and ``DOWN_TILE`` frames: ``y[t] = sum_k h[k] v[L t - k]``
   (``k = 0..K L``, the taps reversed so that a tile reads ascending addresses).

Many small programs instead of one per channel: a single program that walked the whole block
took 15 us (H100; its chain of dependent loads is the cost, not the arithmetic); the tap loops
are unrolled, so a program issues all its loads at once. With ``L = 1``
there is no filter: ``y = f(g x + bias) - f(bias)``, the first kernel alone. The shaper's
``tanh`` is computed from ``exp`` (Triton's ``libdevice.tanh`` does not run in the interpreter),
within ~1e-7 of torch's. ``tests/test_fused_drive.py`` checks the fused drives against the torch
path.
"""
from __future__ import annotations

import numpy as np
import torch

from ..controls import Control
from .fused import chained, follow, tl, triton
from .oversample import halfband_taps

#: Shaper codes of the kernel, by ``Drive.type_name``.
SHAPERS = {"overdrive": 0, "distortion": 1, "fuzz": 2}
TILE = 32  # high-rate samples per program of the up-sampler (64: 2.5 us more a guitar rack block, H100)
TAPS_TILE = 32  # taps per inner tile of the up-sampler
DOWN_TILE = 16  # frames per program of the down-sampler
DOWN_TAPS_TILE = 64  # taps per inner tile of the down-sampler


class FusedShaper:
    """Gain, up-sampling by ``factor``, shaper and down-sampling of ``(C, n)`` float32 blocks.

    Args:
        factor: 1, 2, 4 or 8.
        shaper: the drive's ``type_name`` (a key of ``SHAPERS``).
        channels, max_block, device: of the blocks.

    Per block: ``before_block(frames)`` on the host, then ``run(x, gains, bias)``, which returns
    ``(C, n)``, a view valid until the next call. ``latency`` is the delay in frames (``K``, 0
    for factor 1), as the torch path's.
    """

    def __init__(self, factor: int, shaper: str, channels: int, max_block: int, device) -> None:
        self.factor, self.shaper = factor, SHAPERS[shaper]
        taps = halfband_taps(factor) if factor > 1 else np.ones(1)
        self.latency = K = (len(taps) - 1) // factor
        self.reversed_taps = torch.tensor(taps[::-1].copy(), dtype=torch.float32, device=device)
        # The up-sampler's taps by phase, scaled by L: ``phases[p, j] = L h[p + L j]`` (0 past the
        # end), rows padded to whole tiles, so that a tile of taps is one contiguous read.
        self._row = -(-(K + 1) // TAPS_TILE) * TAPS_TILE
        padded = np.zeros(factor * self._row)
        padded[: len(taps)] = taps
        phases = np.zeros((factor, self._row))
        phases[:, : K + 1] = factor * padded[: factor * (K + 1)].reshape(K + 1, factor).T
        self.phases = torch.tensor(phases, dtype=torch.float32, device=device)
        self._sizes = (1 << (K + max_block - 1).bit_length(), 1 << ((K + max_block) * factor - 1).bit_length())
        self.inputs = torch.zeros(channels, self._sizes[0], device=device)
        self.shaped = torch.zeros(channels, self._sizes[1], device=device)
        self._positions = Control(2, device, torch.int64)  # the block's first slot in each ring
        self._written = 0  # frames written before this block
        self._out = torch.empty(channels, max_block, device=device)

    def before_block(self, frames: int) -> None:
        """Host side: the next block of ``frames`` starts where the last one ended."""
        start = self._written
        self._positions.set([start % self._sizes[0], start * self.factor % self._sizes[1]])
        self._written = (start + frames) % self._sizes[0]

    def run(self, x: torch.Tensor, gains: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x`` ``(C, n)``, ``gains`` ``(n,)`` the drive per frame, ``bias`` ``[b, f(b)]``."""
        channels, frames = x.shape
        out, positions = self._out[:, :frames], self._positions.tensor
        K, L = self.latency, self.factor
        _up_kernel[(channels, triton.cdiv(frames * L, TILE))](
            x, *x.stride(), gains, bias, self.phases, self._row, self.inputs, self.inputs.stride(0), self.shaped,
            self.shaped.stride(0), positions, out, out.stride(0), frames, K=K, L=L, SHAPER=self.shaper,
            RING_X=self._sizes[0], RING_V=self._sizes[1], TILE=TILE, TAPS_TILE=TAPS_TILE, **chained(out))
        if L > 1:
            _down_kernel[(channels, triton.cdiv(frames, DOWN_TILE))](
                self.reversed_taps, self.shaped, self.shaped.stride(0), positions, out, out.stride(0), frames,
                K=K, L=L, RING_V=self._sizes[1], TILE=DOWN_TILE, TAPS_TILE=DOWN_TAPS_TILE, **chained(out))
        return out

    def reset(self) -> None:
        """Clear both rings."""
        self.inputs.zero_()
        self.shaped.zero_()


if triton is not None:
    @triton.jit
    def _tanh(u):
        """``tanh`` from ``exp``: a series near 0, where ``1 - exp(-2|u|)`` would lose digits."""
        a = tl.abs(u)
        e = tl.exp(-2.0 * a)
        u2 = u * u
        near = a * (1.0 + u2 * (-1.0 / 3.0 + u2 * (2.0 / 15.0 + u2 * (-17.0 / 315.0))))
        t = tl.where(a < 0.2, near, (1.0 - e) / (1.0 + e))
        return tl.where(u < 0.0, -t, t)

    @triton.jit
    def _shape(u, SHAPER: tl.constexpr):
        """The drives' curves (see ``effects/drive.py``): 0 overdrive, 1 distortion, 2 fuzz."""
        if SHAPER == 0:
            return _tanh(u)
        elif SHAPER == 1:
            return tl.where(u >= 0.0, _tanh(u), 0.5 * _tanh(2.0 * u))
        else:
            return u / tl.sqrt(tl.sqrt(1.0 + (u * u) * (u * u)))

    @triton.jit
    def _up_kernel(x, x_stride, x_step, gains, bias, phases, row, inputs, inputs_stride, shaped, shaped_stride,
                   positions, out, out_stride, frames, K: tl.constexpr, L: tl.constexpr, SHAPER: tl.constexpr,
                   RING_X: tl.constexpr, RING_V: tl.constexpr, TILE: tl.constexpr, TAPS_TILE: tl.constexpr,
                   PDL: tl.constexpr):
        follow(PDL)
        channel, part = tl.program_id(0), tl.program_id(1)
        x += channel * x_stride
        inputs += channel * inputs_stride
        bias_in, bias_out = tl.load(bias), tl.load(bias + 1)
        at_x, at_v = tl.load(positions), tl.load(positions + 1)
        if L == 1:
            t = part * TILE + tl.arange(0, TILE)
            driven = tl.load(x + t * x_step, mask=t < frames) * tl.load(gains + t, mask=t < frames)
            tl.store(out + channel * out_stride + t, _shape(driven + bias_in, SHAPER) - bias_out, mask=t < frames)
        else:
            s = part * TILE + tl.arange(0, TILE)  # high-rate samples of the block
            t, phase = s // L, s % L
            products = tl.zeros([TILE, TAPS_TILE], dtype=tl.float32)
            for first in tl.static_range(0, K + 1, TAPS_TILE):
                j = first + tl.arange(0, TAPS_TILE)
                use = (j <= K)[None, :] & (s < frames * L)[:, None]
                h = tl.load(phases + phase[:, None] * row + j[None, :], mask=use, other=0.0)
                back = t[:, None] - j[None, :]  # frame of u from the block's start: < 0 in the ring
                fresh = use & (back >= 0)
                held = tl.load(inputs + ((at_x + back) & (RING_X - 1)), mask=use & (back < 0), other=0.0)
                new = tl.load(x + back * x_step, mask=fresh, other=0.0) * tl.load(gains + back, mask=fresh, other=0.0)
                products += h * (held + new)
            v = _shape(tl.sum(products, axis=1) + bias_in, SHAPER) - bias_out
            tl.store(shaped + channel * shaped_stride + ((at_v + s) & (RING_V - 1)), v, mask=s < frames * L)
            if part == 0:  # the block's driven input, for the next blocks (the ring holds K + n)
                for start in range(0, frames, TILE):
                    frame = start + tl.arange(0, TILE)
                    u = tl.load(x + frame * x_step, mask=frame < frames) * tl.load(gains + frame, mask=frame < frames)
                    tl.store(inputs + ((at_x + frame) & (RING_X - 1)), u, mask=frame < frames)

    @triton.jit
    def _down_kernel(reversed_taps, shaped, shaped_stride, positions, out, out_stride, frames, K: tl.constexpr,
                     L: tl.constexpr, RING_V: tl.constexpr, TILE: tl.constexpr, TAPS_TILE: tl.constexpr,
                     PDL: tl.constexpr):
        follow(PDL)
        channel, part = tl.program_id(0), tl.program_id(1)
        shaped += channel * shaped_stride
        at_v = tl.load(positions + 1)
        t = part * TILE + tl.arange(0, TILE)
        products = tl.zeros([TILE, TAPS_TILE], dtype=tl.float32)
        for first in tl.static_range(0, K * L + 1, TAPS_TILE):  # y[t] = sum_k h[K L - k] v[L t + k - K L]
            k = first + tl.arange(0, TAPS_TILE)
            h = tl.load(reversed_taps + k, mask=k <= K * L, other=0.0)
            use = (t < frames)[:, None] & (k <= K * L)[None, :]
            slot = (at_v + L * t[:, None] + k[None, :] - K * L) & (RING_V - 1)
            products += h[None, :] * tl.load(shaped + slot, mask=use, other=0.0)
        tl.store(out + channel * out_stride + t, tl.sum(products, axis=1), mask=t < frames)
