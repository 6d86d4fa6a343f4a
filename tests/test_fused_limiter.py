"""The fused (Triton) limiter equals its torch path, block after block, while parameters move:
on a GPU, or on the CPU under ``TRITON_INTERPRET=1`` (Triton's interpreter)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec

from conftest import TRITON_DEVICES

pytest.importorskip("triton")

#: (block index, parameter, value): into the ceiling, a fast and a slow release, the drive.
MOVES = [(2, "input_gain_db", 18.0), (5, "ceiling_db", -6.0), (8, "release_ms", 2.0), (11, "release_ms", 400.0),
         (14, "input_gain_db", 0.0), (17, "mix", 0.4)]


def loud(frames: int, seed: int = 0) -> np.ndarray:
    """Noise whose level jumps every 200 frames between -26 and +6 dBFS, ``(2, frames)``."""
    rng = np.random.default_rng(seed)
    envelope = np.repeat(rng.uniform(0.05, 2.0, frames // 200 + 1), 200)[:frames]
    return (rng.standard_normal((2, frames)) * envelope).astype(np.float32)


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize("blocksize, lookahead_ms", [(64, 5.0), (512, 2.0)])
def test_fused_limiter_equals_torch(device, capture, blocksize, lookahead_ms):
    """Blocks shorter and longer than the look-ahead; odd ones outside capture mode."""
    spec = replace(ProcessSpec(48000, blocksize, 2, device), capture=capture)
    fused, plain = (EFFECTS["limiter"](lookahead_ms=lookahead_ms).prepare(spec) for _ in range(2))
    fused._fused, plain._fused = True, False
    sizes = [blocksize] * 24 if capture else [blocksize, 7, blocksize, blocksize // 2 + 3] * 6
    x = torch.from_numpy(loud(sum(sizes))).to(device)
    moves = {block: (param, value) for block, param, value in MOVES}
    deepest, start = 0.0, 0
    for block, frames in enumerate(sizes):
        for effect in (fused, plain):
            if block in moves:
                effect.set(*moves[block])
            effect.bypass = block in (20, 21)
        piece = x[:, start : start + frames]
        start += frames
        y, ref = (e.process(piece).cpu().double().numpy() for e in (fused, plain))
        assert np.abs(y - ref).max() <= 1e-5 * max(np.abs(ref).max(), 1e-3), f"block {block}"
        assert torch.allclose(fused.gain_reduction_db.cpu(), plain.gain_reduction_db.cpu(), rtol=1e-6, atol=1e-6)
        deepest = max(deepest, float(plain._last_average.max()))
    assert deepest > 6.0  # the signal did drive it into the ceiling
