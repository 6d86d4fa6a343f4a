"""The graph runner's fused way in and out (Triton) equals the torch ops it replaces: on a GPU
(reading and writing pinned host memory), or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx.kernels import fused_io

from conftest import TRITON_DEVICES

pytest.importorskip("triton")


def host_buffer(shape, dtype, device) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype, pin_memory=torch.device(device).type == "cuda")


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("frames, channels", [(64, 2), (300, 3), (1, 1), (128, 64), (70, 70)])
def test_arrive_copies_the_bank_and_sanitises_the_input(device, frames, channels):
    rng = np.random.default_rng(frames)
    words = 1500 + frames * channels // 2  # more than one copying program
    host = host_buffer(words * 8, torch.uint8, device)
    host.view(torch.int64).copy_(torch.from_numpy(rng.integers(-2**62, 2**62, words)))
    block = host[-frames * channels * 4:].view(torch.float32).view(frames, channels)
    values = rng.standard_normal((frames, channels)).astype(np.float32)
    poisoned = values.ravel()[::7]  # a view: every 7th sample NaN, +Inf or -Inf
    poisoned[:] = np.resize([np.nan, np.inf, -np.inf], poisoned.size)
    block.copy_(torch.from_numpy(values))
    device_bank = torch.zeros_like(host, device=device)
    planar = torch.full((channels, frames + 5), 7.0, device=device)
    fused_io.arrive(host, device_bank, block, planar[:, :frames])
    assert torch.equal(device_bank.cpu(), host)
    expected = np.nan_to_num(values.T, nan=0.0, posinf=0.0, neginf=0.0)
    assert np.array_equal(planar[:, :frames].cpu().numpy(), expected)
    assert torch.all(planar[:, frames:] == 7.0)  # nothing past the block


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("frames, channels", [(64, 2), (700, 3), (128, 64), (70, 70)])
def test_depart_clips_and_sums(device, frames, channels):
    rng = np.random.default_rng(channels)
    wide = torch.from_numpy(rng.standard_normal((channels, frames + 3)).astype(np.float32) * 2).to(device)
    y = wide[:, 1 : frames + 1]  # a strided view, as chains return
    out = host_buffer((frames + 2, channels), torch.float32, device)
    fused_io.depart(y, 0.5, out[: frames + 1])
    reference = y.cpu()
    assert torch.equal(out[:frames], reference.clamp(-0.5, 0.5).t())
    assert torch.allclose(out[frames], reference.sum(1), atol=1e-4)
    assert torch.all(out[frames + 1] == 0)
    y[-1, frames // 2] = float("nan")
    fused_io.depart(y, 0.5, out[: frames + 1])
    assert np.isfinite(out[frames, :-1].numpy()).all() and np.isnan(out[frames, -1].item())
