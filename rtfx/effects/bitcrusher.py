"""Bit-crusher: sample-and-hold rate reduction, then amplitude quantization."""
from __future__ import annotations

import torch

from ..controls import Control
from ..effect import Effect
from ..params import Param
from ..spec import ProcessSpec


class BitCrusher(Effect):
    """Hold every ``downsample``-th sample, then quantize to ``2 ** bits`` levels over +-1.

    Sample-and-hold: input sample ``t`` (counted from ``prepare``/``reset``) is captured when
    ``t % downsample == 0`` and held until the next capture, so the pattern does not depend on
    block boundaries. ``downsample`` is rounded to whole samples and switches at a block
    boundary (``ramp_ms`` 0). Quantization is mid-rise and symmetric::

        y = sign(x) (floor(|x| s) + 1/2) / s          s = 2 ** (bits - 1)

    so ``bits`` b gives the ``2**b`` levels ``+-(k + 1/2) / s`` inside full scale (1 bit: +-0.5),
    and exact silence stays silent. ``bits`` may be fractional (it ramps); levels continue
    past full scale (no clipping).

    The hold pattern and the step reach the kernels as ``Control``s (the host writes them in
    ``_control``); with ``spec.capture`` the sample-and-hold gather runs even at ``downsample`` 1.
    """

    type_name = "bitcrusher"
    category = "drive"
    params = (
        Param("bits", "bit", 1.0, 24.0, 8.0, doc="resolution: the step is 2^(1 - bits) of full scale"),
        Param("downsample", "x", 1.0, 64.0, 4.0, ramp_ms=0.0, doc="hold each captured sample this many samples"),
    )

    def _prepare(self, spec: ProcessSpec) -> None:
        f32 = dict(device=spec.device, dtype=spec.dtype)
        following = torch.arange(1, spec.blocksize + 1, device=spec.device)  # i + 1
        index = torch.empty(spec.blocksize, dtype=torch.int64, device=spec.device)
        # [held value, block]: index 0 is the sample captured last before this block
        self._extended = torch.zeros(spec.channels, spec.blocksize + 1, **f32)
        out = torch.empty(spec.channels, spec.blocksize, **f32)
        sign = torch.empty_like(out)
        # views for every block length, made once (slicing costs ~1-2 us per view per block)
        self._held = self._extended[:, :1]
        self._views = [(following[:n], index[:n], self._extended[:, : n + 1], out[:, :n], sign[:, :n],
                        out[:, max(n - 1, 0) : n]) for n in range(spec.blocksize + 1)]
        self._hold = self._phase = 0  # what the controls hold
        self._hold_control = Control(1, spec.device, torch.int64)  # downsample, whole samples
        self._phase_control = Control(1, spec.device, torch.int64)  # frame % hold - 1 at the block's start
        self._scale = Control(1, spec.device)  # 2 ** (bits - 1)
        self._reset()

    def _reset(self) -> None:
        self._frame = 0  # absolute index of the next input sample
        self._extended.zero_()

    def _update(self) -> None:
        self._scale.set(2.0 ** (self.value("bits") - 1))

    def _control(self, frames: int) -> None:
        hold = round(self.value("downsample"))
        if hold != self._hold:
            self._hold = hold
            self._hold_control.set(hold)
        phase = self._frame % hold - 1
        if phase != self._phase:
            self._phase = phase
            self._phase_control.set(phase)
        self._frame += frames

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        channels, frames = x.shape
        following, index, extended, out, sign, last = self._views[frames]
        if self._hold == 1 and not self.spec.capture:
            out.copy_(x)
        else:
            # sample i of the block takes extended[i + 1 - (frame + i) % hold], clamped at 0
            extended[:, 1:].copy_(x)
            torch.add(following, self._phase_control.tensor, out=index).remainder_(self._hold_control.tensor)
            torch.sub(following, index, out=index).clamp_(min=0)
            torch.gather(extended, 1, index.expand(channels, frames), out=out)
        self._held.copy_(last)
        # sign(x) floor(|x| s) = trunc(x s), and k + 1/2 is exact in float32 for k < 2^23
        scale = self._scale.tensor
        torch.sign(out, out=sign)
        return out.mul_(scale).trunc_().add_(sign, alpha=0.5).div_(scale)
