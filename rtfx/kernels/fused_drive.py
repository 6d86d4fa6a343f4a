"""One GPU kernel per block for a drive's gain, up-sampling, waveshaper and down-sampling
(Triton), instead of ~20 torch ops.

The same filters as ``oversample.Oversampler`` (``halfband_taps``: ``N = K L + 1`` taps, ``L`` the
factor, ``K`` the latency in base frames), written as sums instead of Toeplitz GEMMs. One
program per channel works through a block of ``n`` frames in three steps, each reading what the
one before wrote (a barrier between them):

1. up-sampling and the shaper: ``v[L t + p] = f(L sum_j h[p + L j] u[t - j] + bias) - f(bias)``
   (``j = 0..K``, ``u = g x`` the driven input, its last ``K`` frames kept in ``inputs``) after
   ``K L`` samples of history in ``shaped`` ``(C, (K + n) L)``;
2. down-sampling: ``y[t] = sum_k h[k] v[L t - k]`` (``k = 0..K L``) into the output;
3. the last ``K`` driven frames and ``K L`` shaped samples become the next block's histories.

Every tile reads its taps and samples as contiguous runs (the up-sampler's taps are stored by
phase) and sums its products once, at the end. With ``L = 1`` there is no filter:
``y = f(g x + bias) - f(bias)``. The shaper's ``tanh`` is computed from ``exp`` (Triton's
``libdevice.tanh`` does not run in the interpreter), within ~1e-7 of torch's. ``tests/test_fused_drive.py`` checks the fused drives against the torch path.
"""
from __future__ import annotations

import numpy as np
import torch

from .fused import tl, triton
from .oversample import halfband_taps

#: Shaper codes of the kernel, by ``Drive.type_name``.
SHAPERS = {"overdrive": 0, "distortion": 1, "fuzz": 2}
TILE = 128  # samples per tile (the down-sampler: frames per tile, half as many)
TAPS_TILE = 32  # taps per inner tile of the up-sampler (the down-sampler: twice as many)
WARPS = 8


class FusedShaper:
    """Gain, up-sampling by ``factor``, shaper and down-sampling of ``(C, n)`` float32 blocks.

    Args:
        factor: 1, 2, 4 or 8.
        shaper: the drive's ``type_name`` (a key of ``SHAPERS``).
        channels, max_block, device: of the blocks.

    ``run(x, gains, bias)`` returns ``(C, n)``, a view valid until the next call; ``latency``
    is the delay in frames (``K``, 0 for factor 1), as the torch path's.
    """

    def __init__(self, factor: int, shaper: str, channels: int, max_block: int, device) -> None:
        self.factor, self.shaper = factor, SHAPERS[shaper]
        taps = halfband_taps(factor) if factor > 1 else np.ones(1)
        self.latency = K = (len(taps) - 1) // factor
        self.taps = torch.tensor(taps, dtype=torch.float32, device=device)
        # The up-sampler's taps by phase, scaled by L: ``phases[p, j] = L h[p + L j]`` (0 past the
        # end), rows padded to whole tiles, so that a tile of taps is one contiguous read.
        self._row = -(-(K + 1) // TAPS_TILE) * TAPS_TILE
        padded = np.zeros(factor * self._row)
        padded[: len(taps)] = taps
        phases = np.zeros((factor, self._row))
        phases[:, : K + 1] = factor * padded[: factor * (K + 1)].reshape(K + 1, factor).T
        self.phases = torch.tensor(phases, dtype=torch.float32, device=device)
        self.inputs = torch.zeros(channels, max(K, 1), device=device)
        self.shaped = torch.zeros(channels, (self.latency + max_block) * factor, device=device)
        self._out = torch.empty(channels, max_block, device=device)

    def run(self, x: torch.Tensor, gains: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x`` ``(C, n)``, ``gains`` ``(n,)`` the drive per frame, ``bias`` ``[b, f(b)]``."""
        channels, frames = x.shape
        out = self._out[:, :frames]
        _drive_kernel[(channels,)](
            x, *x.stride(), gains, bias, self.taps, self.phases, self._row, self.inputs, self.inputs.stride(0), self.shaped,
            self.shaped.stride(0), out, out.stride(0), frames,
            K=self.latency, L=self.factor, SHAPER=self.shaper, TILE=TILE, TAPS_TILE=TAPS_TILE,
            KEEP_X=triton.next_power_of_2(self.latency), KEEP_V=triton.next_power_of_2(self.latency * self.factor),
            num_warps=WARPS)
        return out

    def reset(self) -> None:
        """Clear both histories."""
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
    def _driven(x, x_step, gains, inputs, at, frames, K: tl.constexpr):
        """The driven input at window index ``at`` (any shape): ``inputs[at]`` (the history)
        below ``K``, ``g x`` of this block from ``K`` to ``K + frames``, else 0."""
        fresh = (at >= K) & (at < K + frames)
        held = tl.load(inputs + at, mask=(at >= 0) & (at < K), other=0.0)
        return held + tl.load(x + (at - K) * x_step, mask=fresh, other=0.0) * tl.load(gains + at - K, mask=fresh, other=0.0)

    @triton.jit
    def _drive_kernel(x, x_stride, x_step, gains, bias, taps, phases, row, inputs, inputs_stride, shaped, shaped_stride,
                      out, out_stride, frames, K: tl.constexpr, L: tl.constexpr, SHAPER: tl.constexpr,
                      TILE: tl.constexpr, TAPS_TILE: tl.constexpr, KEEP_X: tl.constexpr, KEEP_V: tl.constexpr):
        channel = tl.program_id(0)
        x += channel * x_stride
        inputs += channel * inputs_stride
        shaped += channel * shaped_stride
        out += channel * out_stride
        bias_in, bias_out = tl.load(bias), tl.load(bias + 1)
        if L == 1:
            for start in range(0, frames, TILE):
                t = start + tl.arange(0, TILE)
                driven = tl.load(x + t * x_step, mask=t < frames) * tl.load(gains + t, mask=t < frames)
                tl.store(out + t, _shape(driven + bias_in, SHAPER) - bias_out, mask=t < frames)
        else:
            high = frames * L
            for start in range(0, high, TILE):  # 1. up-sampling and the shaper
                s = start + tl.arange(0, TILE)
                t, phase = s // L, s % L
                products = tl.zeros([TILE, TAPS_TILE], dtype=tl.float32)
                for first in tl.static_range(0, K + 1, TAPS_TILE):
                    j = first + tl.arange(0, TAPS_TILE)
                    use = (j <= K)[None, :] & (s < high)[:, None]
                    h = tl.load(phases + phase[:, None] * row + j[None, :], mask=use, other=0.0)
                    products += h * _driven(x, x_step, gains, inputs, K + t[:, None] - j[None, :], frames, K)
                v = _shape(tl.sum(products, axis=1) + bias_in, SHAPER) - bias_out
                tl.store(shaped + K * L + s, v, mask=s < high)
            tl.debug_barrier()
            for start in range(0, frames, TILE // 2):  # 2. down-sampling
                t = start + tl.arange(0, TILE // 2)
                products = tl.zeros([TILE // 2, 2 * TAPS_TILE], dtype=tl.float32)
                for first in tl.static_range(0, K * L + 1, 2 * TAPS_TILE):
                    k = first + tl.arange(0, 2 * TAPS_TILE)
                    use = (k <= K * L)[None, :] & (t < frames)[:, None]
                    h = tl.load(taps + k, mask=k <= K * L, other=0.0)
                    products += h[None, :] * tl.load(shaped + K * L + L * t[:, None] - k[None, :], mask=use, other=0.0)
                tl.store(out + t, tl.sum(products, axis=1), mask=t < frames)
            tl.debug_barrier()  # 3. the histories of the next block: all read, then all written
            at_x, at_v = tl.arange(0, KEEP_X), tl.arange(0, KEEP_V)
            next_x = _driven(x, x_step, gains, inputs, frames + at_x, frames, K)
            next_v = tl.load(shaped + high + at_v, mask=at_v < K * L)
            tl.debug_barrier()
            tl.store(inputs + at_x, next_x, mask=at_x < K)
            tl.store(shaped + at_v, next_v, mask=at_v < K * L)
