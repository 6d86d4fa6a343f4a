"""The fused (Triton) pre-delay and echo delay equal their torch paths in capture mode while
their parameters move: on a GPU, or on the CPU under ``TRITON_INTERPRET=1`` (Triton's interpreter)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.effects.delay import Delay
from rtfx.kernels.predelay import PreDelay

from conftest import TRITON_DEVICES, rel_err

pytest.importorskip("triton")


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_fused_predelay_equals_torch(device):
    lines = [PreDelay(channels=2, max_delay=300, max_block=64, fade=40, device=device, capture=True) for _ in range(2)]
    lines[0]._fused, lines[1]._fused = True, False
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((2, 64 * 30)).astype(np.float32)).to(device)
    delays = {0: 10, 4: 50, 6: 0, 9: 300, 10: 3, 20: 64, 25: 200}  # block -> new delay (some crossfades overlap)
    for block in range(30):
        outputs = []
        for line in lines:
            if block in delays:
                line.set_delay(delays[block])
            line.before_block(64)
            outputs.append(line.run(x[:, block * 64 : (block + 1) * 64]).cpu().numpy())
        np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6, err_msg=f"block {block}")


#: (block index, parameter, value): time (crossfades), feedback and the high cut move.
ECHO_MOVES = [(2, "feedback", 0.9), (4, "time_ms", 12.0), (7, "high_cut_hz", 900.0), (9, "time_ms", 25.0),
              (12, "feedback", 0.2), (14, "bpm", 300.0), (15, "mix", 0.4)]


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("ping_pong", [False, True])
@pytest.mark.parametrize("blocksize", [64, 600])
def test_fused_echo_equals_torch(device, ping_pong, blocksize):
    """Short delays (10-25 ms) feed back within a few blocks; 600 frames run in pieces of at
    most the shortest delay, each reading what the one before wrote. The mix then moves and the
    bypass toggles (blended in the kernel)."""
    spec = replace(ProcessSpec(48000, blocksize, 3, device), capture=True)  # 3 rows: ping-pong L -> R -> 3rd
    fast, plain = (Delay(ping_pong=ping_pong, time_ms=10.0, mix=1.0).prepare(spec) for _ in range(2))
    fast._fused, plain._fused = True, False
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((3, blocksize * 18)).astype(np.float32)).to(device)
    outputs = {fast: [], plain: []}
    for block in range(18):
        for effect, out in outputs.items():
            for at, param, value in ECHO_MOVES:
                if at == block:
                    effect.set(param, value)
            effect.bypass = block == 16
            out.append(effect.process(x[:, block * blocksize : (block + 1) * blocksize]).cpu().double().numpy())
    y, ref = (np.concatenate(outputs[e], -1) for e in (fast, plain))
    assert np.abs(ref).max() > 1.0  # the feedback did build up
    assert rel_err(y, ref) <= 1e-5


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("blocksize", [64, 256])
def test_fused_delayed_mix_equals_torch(device, blocksize):
    """A drive's dry path (delayed by its 82-frame latency, longer and shorter than a block)
    blended as the mix and bypass move."""
    spec = replace(ProcessSpec(48000, blocksize, 2, device), capture=True)
    fast, plain = (EFFECTS["overdrive"](oversample=2, mix=0.5).prepare(spec) for _ in range(2))
    fast._fused_mix, plain._fused_mix = True, False
    blocks = 8 + -(-4800 // blocksize)  # 0.1 s after the bypass: its ramp has ended
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((2, blocksize * blocks)).astype(np.float32)).to(device)
    outputs = {fast: [], plain: []}
    for block in range(blocks):
        for effect, out in outputs.items():
            if block == 4:
                effect.set("mix", 0.0)
            if block == 8:
                effect.bypass = True
            out.append(effect.process(x[:, block * blocksize : (block + 1) * blocksize]).cpu().double().numpy())
    y, ref = (np.concatenate(outputs[e], -1) for e in (fast, plain))
    assert rel_err(y, ref) <= 1e-6
    np.testing.assert_allclose(ref[:, -blocksize:], x[:, -blocksize - 82 : -82].cpu().numpy(), atol=1e-6)  # bypassed: the dry, delayed
