"""The fused (Triton) drives equal their torch path block after block, while parameters move: on a
GPU, or on the CPU under ``TRITON_INTERPRET=1`` (Triton's interpreter)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.kernels import fused

from conftest import TRITON_DEVICES, rel_err

pytest.importorskip("triton")

#: (block index, parameter, value): drive, bias, tone and level move while the signal plays.
MOVES = [(3, "drive_db", 40.0), (6, "bias", -0.3), (9, "tone_hz", 1500.0), (12, "level_db", 0.0), (15, "drive_db", 0.0)]
BLOCKS = 18


def signal(frames: int, seed: int = 0) -> np.ndarray:
    """Noise bursts from -80 to 0 dBFS with silent gaps, ``(2, frames)``: tiny values test the
    shaper's series, loud ones its clipping."""
    rng = np.random.default_rng(seed)
    envelope = np.repeat(10 ** (rng.uniform(-80, 0, frames // 40 + 1) / 20), 40)[:frames]
    envelope[rng.random(envelope.size) < 0.1] = 0.0
    return (rng.standard_normal((2, frames)) * envelope).astype(np.float32)


def prepared(name: str, oversample: int, spec: ProcessSpec, fuse: bool, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(fused, "available", lambda device: fuse)
        effect = EFFECTS[name](oversample=oversample).prepare(spec)
    assert (effect._fused is not None) == fuse
    return effect


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("name", ["overdrive", "distortion", "fuzz"])
@pytest.mark.parametrize("oversample", [1, 2, 8])
@pytest.mark.parametrize("capture", [False, True])
def test_fused_equals_torch(device, name, oversample, capture, monkeypatch):
    spec = replace(ProcessSpec(48000, 64, 2, device), capture=capture)
    fast, plain = (prepared(name, oversample, spec, fuse, monkeypatch) for fuse in (True, False))
    x = torch.from_numpy(signal(64 * BLOCKS)).to(device)
    moves = {block: (param, value) for block, param, value in MOVES}
    outputs = {fast: [], plain: []}
    for block in range(BLOCKS):
        if block == BLOCKS - 3:
            fast.reset(), plain.reset()  # the histories start again from silence
        for effect, out in outputs.items():
            if block in moves:
                effect.set(*moves[block])
            out.append(effect.process(x[:, block * 64 : (block + 1) * 64]).cpu().double().numpy())
    y, ref = (np.concatenate(outputs[e], -1) for e in (fast, plain))
    assert rel_err(y, ref) <= 1e-5


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("name", ["overdrive", "distortion", "fuzz"])
def test_fused_shapers_keep_quiet_signals_exact(device, name, monkeypatch):
    """Without oversampling the only difference is the shaper: within 5e-7 of each block's
    own level, from -120 dBFS (``tanh``'s series) to clipping."""
    spec = ProcessSpec(48000, 64, 2, device)
    fast, plain = (prepared(name, 1, spec, fuse, monkeypatch) for fuse in (True, False))
    for effect in (fast, plain):
        effect.set("drive_db", 0.0), effect.set("bias", 0.0)
        effect.reset()
    rng = np.random.default_rng(5)
    for level_db in range(-120, 12, 12):
        piece = torch.from_numpy((10 ** (level_db / 20) * rng.standard_normal((2, 64))).astype(np.float32)).to(device)
        y, ref = (e.process(piece).cpu().double().numpy() for e in (fast, plain))
        assert rel_err(y, ref) <= 5e-7, f"{level_db} dBFS"


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_fused_shaper_follows_short_blocks(device, monkeypatch):
    """Blocks shorter than the history (and of changing length) carry the filter states."""
    spec = ProcessSpec(48000, 256, 2, device)
    fast, plain = (prepared("overdrive", 4, spec, fuse, monkeypatch) for fuse in (True, False))
    x = torch.from_numpy(signal(1200, seed=3)).to(device)
    start = 0
    for frames in (1, 7, 64, 200, 256, 3, 100, 256, 256):
        piece = x[:, start : start + frames]
        y, ref = (e.process(piece).cpu().double().numpy() for e in (fast, plain))
        assert np.abs(y - ref).max() <= 1e-5 * max(np.abs(ref).max(), 1e-3), f"{frames} frames at {start}"
        start += frames
