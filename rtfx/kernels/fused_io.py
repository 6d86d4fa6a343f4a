"""A graph's way in and out through pinned host memory, with no copy-engine transfers (Triton).

A graph runner's block used to start with a host-to-device copy of its control bank and a
kernel sanitising the input, and to end with three guard kernels and a device-to-host copy.
Here both ends are one kernel each, and the kernels read and write the pinned host buffers
directly (pinned memory is mapped into the GPU's address space):

- ``arrive``: copies the bank to the device and writes the input block, NaN/Inf -> 0, planar.
- ``depart``: writes the output block clipped, plus one row of per-channel sums of the
  unclipped output (the finite check), into the pinned output.

Both move the interleaved block in tiles of whole frames (up to 64 channels a program): over
the bus each tile is one contiguous range. A program per channel, as before, read and wrote
every sample on its own (64 channels x 128 frames: 8192 separate 4-byte transfers).

``tests/test_fused_io.py`` checks them against the torch ops they replace.
"""
from __future__ import annotations

import torch

from .fused import chained, follow, tl, triton

WORDS = 1024  # 8-byte words of the bank per program
FRAMES = 64  # frames per tile of the input and output
CHANNELS = 64  # the most channels per program of the input and output


def arrive(host: torch.Tensor, device: torch.Tensor, block: torch.Tensor, planar: torch.Tensor) -> None:
    """Copy the bank ``host`` (pinned, uint8) into ``device`` and the input ``block``
    ``(frames, C)`` (a pinned view of the bank) into ``planar`` ``(C, frames)``, NaN/Inf -> 0."""
    words = host.numel() // 8
    frames, channels = block.shape
    copiers = triton.cdiv(words, WORDS)
    width = min(triton.next_power_of_2(channels), CHANNELS)
    _arrive_kernel[(copiers + triton.cdiv(channels, width),)](
        host.view(torch.int64), device.view(torch.int64), words, copiers, block, block.stride(0), planar,
        planar.stride(0), frames, channels, WORDS=WORDS, FRAMES=FRAMES, WIDTH=width, **chained(planar))


def depart(y: torch.Tensor, ceiling: float, out: torch.Tensor) -> None:
    """Write ``y`` ``(C, frames)`` clipped to ``+-ceiling`` into ``out[:frames]`` ``(frames + 1, C)``
    (pinned) and each channel's sum of ``y`` into ``out[frames]``."""
    channels, frames = y.shape
    width = min(triton.next_power_of_2(channels), CHANNELS)
    _depart_kernel[(triton.cdiv(channels, width),)](y, *y.stride(), ceiling, out, out.stride(0), frames, channels,
                                                    FRAMES=FRAMES, WIDTH=width, **chained(y))


if triton is not None:
    @triton.jit
    def _arrive_kernel(host, device, words, copiers, block, block_stride, planar, planar_stride, frames, channels,
                       WORDS: tl.constexpr, FRAMES: tl.constexpr, WIDTH: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        program = tl.program_id(0)
        if program < copiers:
            at = program * WORDS + tl.arange(0, WORDS)
            tl.store(device + at, tl.load(host + at, mask=at < words), mask=at < words)
        else:  # whole rows of the interleaved input: contiguous reads over the bus
            channel = (program - copiers) * WIDTH + tl.arange(0, WIDTH)
            for first in range(0, frames, FRAMES):
                at = first + tl.arange(0, FRAMES)
                inside = (at < frames)[:, None] & (channel < channels)[None, :]
                value = tl.load(block + at[:, None] * block_stride + channel[None, :], mask=inside, other=0.0)
                finite = tl.abs(value) < float("inf")  # false for NaN and +-Inf
                tl.store(planar + channel[None, :] * planar_stride + at[:, None], tl.where(finite, value, 0.0),
                         mask=inside)

    @triton.jit
    def _depart_kernel(y, y_stride, y_step, ceiling, out, out_stride, frames, channels, FRAMES: tl.constexpr,
                       WIDTH: tl.constexpr, PDL: tl.constexpr):
        follow(PDL)
        channel = tl.program_id(0) * WIDTH + tl.arange(0, WIDTH)
        total = tl.zeros((FRAMES, WIDTH), tl.float32)
        for first in range(0, frames, FRAMES):  # whole rows of the interleaved output: contiguous writes
            at = first + tl.arange(0, FRAMES)
            inside = (at < frames)[:, None] & (channel < channels)[None, :]
            value = tl.load(y + channel[None, :] * y_stride + at[:, None] * y_step, mask=inside, other=0.0)
            total += value
            clipped = tl.minimum(tl.maximum(value, -ceiling), ceiling)
            tl.store(out + at[:, None] * out_stride + channel[None, :], clipped, mask=inside)
        tl.store(out + frames * out_stride + channel, tl.sum(total, axis=0), mask=channel < channels)
