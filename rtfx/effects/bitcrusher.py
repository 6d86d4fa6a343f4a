"""Bit-crusher: sample-and-hold rate reduction, then amplitude quantization."""
from __future__ import annotations

import torch

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
    """

    type_name = "bitcrusher"
    category = "drive"
    params = (
        Param("bits", "bit", 1.0, 24.0, 8.0, doc="resolution: the step is 2^(1 - bits) of full scale"),
        Param("downsample", "x", 1.0, 64.0, 4.0, ramp_ms=0.0, doc="hold each captured sample this many samples"),
    )

    def _prepare(self, spec: ProcessSpec) -> None:
        f32 = dict(device=spec.device, dtype=spec.dtype)
        self._next = torch.arange(1, spec.blocksize + 1, device=spec.device)  # i + 1
        self._index = torch.empty(spec.blocksize, dtype=torch.int64, device=spec.device)
        # [held value, block]: index 0 is the sample captured last before this block
        self._extended = torch.zeros(spec.channels, spec.blocksize + 1, **f32)
        self._out = torch.empty(spec.channels, spec.blocksize, **f32)
        self._sign = torch.empty_like(self._out)
        self._reset()

    def _reset(self) -> None:
        self._frame = 0  # absolute index of the next input sample
        self._extended.zero_()

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        hold = round(self.value("downsample"))
        out = self._out[:, :frames]
        if hold == 1:
            out.copy_(x)
        else:
            # sample i of the block takes extended[i + 1 - (frame + i) % hold], clamped at 0
            extended = self._extended[:, : frames + 1]
            extended[:, 1:].copy_(x)
            index = torch.add(self._next[:frames], self._frame % hold - 1, out=self._index[:frames])
            index.remainder_(hold).neg_().add_(self._next[:frames]).clamp_(min=0)
            torch.gather(extended, 1, index.expand(x.shape[0], frames), out=out)
        self._extended[:, 0].copy_(out[:, -1])
        self._frame += frames
        scale = 2.0 ** (self.value("bits") - 1)
        sign = torch.sign(out, out=self._sign[:, :frames])
        return out.abs_().mul_(scale).floor_().add_(0.5).div_(scale).mul_(sign)
