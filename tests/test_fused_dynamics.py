"""The fused (Triton) gate, compressor and de-esser equal their torch kernels, block after block, while
parameters move: on a GPU, or on the CPU under ``TRITON_INTERPRET=1`` (Triton's interpreter)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.kernels.fused import available

from conftest import TRITON_DEVICES

pytest.importorskip("triton")

#: Moves per effect: (block index, parameter, value), to cross thresholds, holds and times.
MOVES = {
    "gate": [(3, "threshold_db", -20.0), (6, "hold_ms", 0.0), (9, "attack_ms", 0.1), (12, "release_ms", 5.0),
             (15, "range_db", -20.0)],
    "compressor": [(3, "threshold_db", -40.0), (6, "ratio", 20.0), (9, "attack_ms", 0.1), (12, "makeup_db", 6.0),
                   (15, "sidechain_hpf_hz", 300.0), (18, "knee_db", 0.0)],
    "deesser": [(3, "threshold_db", -50.0), (6, "frequency_hz", 2500.0), (9, "attack_ms", 0.1), (12, "range_db", 24.0),
                (15, "release_ms", 5.0)],
}


def signal(frames: int, seed: int = 0) -> np.ndarray:
    """Bursts and silences of noise at levels from -70 to 0 dBFS, ``(2, frames)``."""
    rng = np.random.default_rng(seed)
    envelope = np.repeat(10 ** (rng.uniform(-70, 0, frames // 500 + 1) / 20), 500)[:frames]
    envelope[rng.random(envelope.size) < 0.1] = 0.0
    return (rng.standard_normal((2, frames)) * envelope).astype(np.float32)


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("name", sorted(MOVES))
@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize("frames", [64, 200])  # 200: tiles of 64 carry their states, the last one partial
def test_fused_equals_torch(device, name, capture, frames):
    spec = replace(ProcessSpec(48000, frames, 2, device), capture=capture)
    fused, plain = (EFFECTS[name]().prepare(spec) for _ in range(2))
    fused._fused, plain._fused = True, False
    x = torch.from_numpy(signal(frames * 28)).to(device)
    moves = {block: (param, value) for block, param, value in MOVES[name] + [(21, "mix", 0.3)]}
    deepest = 0.0
    for block in range(28):
        for effect in (fused, plain):
            if block in moves:
                effect.set(*moves[block])
            effect.bypass = block in (24, 25)  # the dry/wet blend moving (in the kernel in capture mode)
        piece = x[:, block * frames : (block + 1) * frames]
        y, ref = (e.process(piece).cpu().double().numpy() for e in (fused, plain))
        assert np.abs(y - ref).max() <= 1e-5 * max(np.abs(ref).max(), 1e-3), f"block {block}"
        assert torch.allclose(fused.gain_reduction_db.cpu(), plain.gain_reduction_db.cpu(), rtol=1e-6, atol=1e-6)
        deepest = max(deepest, float(plain.gain_reduction_db))
    assert deepest > 0.5  # the signal did make it work (dB of reduction at some block's end)


def test_available_only_on_cuda():
    assert not available("cpu")
