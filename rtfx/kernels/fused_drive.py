"""One GPU kernel per block for a drive's gain, up-sampling, waveshaper and down-sampling
(Triton), instead of ~20 torch ops.

The same filters as ``oversample.Oversampler`` (``halfband_taps``: ``N = K L + 1`` taps, ``L`` the
factor, ``K`` the latency in base frames), written as sums instead of Toeplitz GEMMs. One
program per channel works through a block of ``n`` frames in four steps, each reading what the
one before wrote (a barrier between them):

1. the driven block ``u = g x`` goes after ``K`` frames of history in ``inputs`` ``(C, K + n)``;
2. up-sampling and the shaper: ``v[L t + p] = f(L sum_j h[p + L (K - j)] w[t + j] + bias) - f(bias)``
   (``j = 0..K``, ``w`` the window in ``inputs``) after ``K L`` samples of history in ``shaped``
   ``(C, (K + n) L)``; one tile of the window serves all ``L`` phases;
3. down-sampling: ``y[t] = sum_k h[K L - k] s[L t + k]`` (``k = 0..K L``, ``s`` the window in
   ``shaped``) into the output;
4. the last ``K`` (``K L``) samples of each buffer move to its front: the next block's history.

The taps are stored in the order they are used (by phase, reversed), so every tile reads
ascending addresses. With ``L = 1`` there is no filter: ``y = f(g x + bias) - f(bias)``. The
shaper's ``tanh`` is computed from ``exp`` (Triton's ``libdevice.tanh`` does not run in the
interpreter), within ~1e-7 of torch's. ``tests/test_fused_drive.py`` checks the fused drives
against the torch path.
"""
from __future__ import annotations

import numpy as np
import torch

from .fused import tl, triton
from .oversample import halfband_taps

#: Shaper codes of the kernel, by ``Drive.type_name``.
SHAPERS = {"overdrive": 0, "distortion": 1, "fuzz": 2}
FRAMES_TILE = 64  # frames per tile
TAPS_TILE = 64  # taps per tile of the down-sampler
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
        self.reversed_taps = torch.tensor(taps[::-1].copy(), dtype=torch.float32, device=device)
        # The up-sampler's taps by phase, reversed and scaled: ``phases[p, j] = L h[p + L (K - j)]``
        # (0 past the end); a row per phase, padded to a power of two.
        self._row = 1 << K.bit_length()  # the next power of two above K
        index = np.arange(factor)[:, None] + factor * (K - np.arange(K + 1))[None, :]
        phases = np.zeros((factor, self._row))
        phases[:, : K + 1] = np.where(index < len(taps), factor * taps[np.minimum(index, len(taps) - 1)], 0.0)
        self.phases = torch.tensor(phases, dtype=torch.float32, device=device)
        self.inputs = torch.zeros(channels, K + max_block, device=device)
        self.shaped = torch.zeros(channels, (K + max_block) * factor, device=device)
        self._out = torch.empty(channels, max_block, device=device)

    def run(self, x: torch.Tensor, gains: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x`` ``(C, n)``, ``gains`` ``(n,)`` the drive per frame, ``bias`` ``[b, f(b)]``."""
        channels, frames = x.shape
        out = self._out[:, :frames]
        K, L = self.latency, self.factor
        _drive_kernel[(channels,)](
            x, *x.stride(), gains, bias, self.reversed_taps, self.phases, self.inputs, self.inputs.stride(0),
            self.shaped, self.shaped.stride(0), out, out.stride(0), frames, K=K, L=L, SHAPER=self.shaper,
            ROW=self._row, FRAMES_TILE=FRAMES_TILE, TAPS_TILE=TAPS_TILE, KEEP_X=triton.next_power_of_2(max(K, 1)),
            KEEP_V=triton.next_power_of_2(max(K * L, 1)), num_warps=WARPS)
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
    def _drive_kernel(x, x_stride, x_step, gains, bias, reversed_taps, phases, inputs, inputs_stride, shaped,
                      shaped_stride, out, out_stride, frames, K: tl.constexpr, L: tl.constexpr, SHAPER: tl.constexpr,
                      ROW: tl.constexpr, FRAMES_TILE: tl.constexpr, TAPS_TILE: tl.constexpr, KEEP_X: tl.constexpr,
                      KEEP_V: tl.constexpr):
        channel = tl.program_id(0)
        x += channel * x_stride
        inputs += channel * inputs_stride
        shaped += channel * shaped_stride
        out += channel * out_stride
        bias_in, bias_out = tl.load(bias), tl.load(bias + 1)
        for start in range(0, frames, FRAMES_TILE):  # 1. the driven block
            t = start + tl.arange(0, FRAMES_TILE)
            driven = tl.load(x + t * x_step, mask=t < frames) * tl.load(gains + t, mask=t < frames)
            if L == 1:
                tl.store(out + t, _shape(driven + bias_in, SHAPER) - bias_out, mask=t < frames)
            else:
                tl.store(inputs + K + t, driven, mask=t < frames)
        if L > 1:
            tl.debug_barrier()
            j = tl.arange(0, ROW)
            for start in range(0, frames, FRAMES_TILE):  # 2. up-sampling and the shaper
                t = start + tl.arange(0, FRAMES_TILE)
                window = tl.load(inputs + t[:, None] + j[None, :], mask=(t < frames)[:, None] & (j <= K)[None, :],
                                 other=0.0)
                for phase in tl.static_range(L):
                    v = tl.sum(window * tl.load(phases + phase * ROW + j)[None, :], axis=1)
                    tl.store(shaped + K * L + L * t + phase, _shape(v + bias_in, SHAPER) - bias_out, mask=t < frames)
            tl.debug_barrier()
            for start in range(0, frames, FRAMES_TILE):  # 3. down-sampling
                t = start + tl.arange(0, FRAMES_TILE)
                products = tl.zeros([FRAMES_TILE, TAPS_TILE], dtype=tl.float32)
                for first in tl.static_range(0, K * L + 1, TAPS_TILE):
                    k = first + tl.arange(0, TAPS_TILE)
                    h = tl.load(reversed_taps + k, mask=k <= K * L, other=0.0)
                    use = (t < frames)[:, None] & (k <= K * L)[None, :]
                    products += h[None, :] * tl.load(shaped + L * t[:, None] + k[None, :], mask=use, other=0.0)
                tl.store(out + t, tl.sum(products, axis=1), mask=t < frames)
            tl.debug_barrier()  # 4. the histories of the next block: all read, then all written
            at_x, at_v = tl.arange(0, KEEP_X), tl.arange(0, KEEP_V)
            next_x = tl.load(inputs + frames + at_x, mask=at_x < K)
            next_v = tl.load(shaped + frames * L + at_v, mask=at_v < K * L)
            tl.debug_barrier()
            tl.store(inputs + at_x, next_x, mask=at_x < K)
            tl.store(shaped + at_v, next_v, mask=at_v < K * L)
