"""Effects whose fused (Triton) kernels fold in the work around them (the dry/wet blend, level
gains) equal the same effects on torch kernels, in capture mode, while parameters, the mix and the
bypass move: on a GPU, or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.kernels import fused

from conftest import TRITON_DEVICES, rel_err

pytest.importorskip("triton")

#: Effect, its arguments and (block, parameter, value) moves besides the mix's.
CASES = {
    "parametric_eq": ({}, [(3, "b1_gain_db", 9.0), (5, "b4_freq_hz", 3000.0)]),
    "distortion": ({"oversample": 2}, [(3, "level_db", -6.0), (5, "drive_db", 20.0)]),
    "convolution": ({"taps": np.random.default_rng(5).standard_normal(900).tolist()}, [(3, "gain_db", -5.0)]),
    "convolution_reverb": ({"taps": np.random.default_rng(4).standard_normal(3000).tolist()},
                           [(3, "gain_db", -4.0), (5, "low_cut_hz", 200.0)]),
}


def build(name: str, device: str, use_fused: bool, monkeypatch):
    args, _ = CASES[name]
    spec = replace(ProcessSpec(48000, 64, 2, device), capture=True)
    with monkeypatch.context() as patch:
        patch.setattr(fused, "available", lambda d: use_fused and torch.device(d).type == torch.device(device).type)
        return EFFECTS[name](**args).prepare(spec)


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_folded_equals_torch(device, name, monkeypatch):
    fast, plain = build(name, device, True, monkeypatch), build(name, device, False, monkeypatch)
    assert plain.blend_ramp(64) is None
    assert fast.blend_ramp(64) is not None or fast.latency  # the kernel blends (with latency: delayed_mix)
    moves = {block: (param, value) for block, param, value in CASES[name][1] + [(7, "mix", 0.4)]}
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 64 * 14)).astype(np.float32) * 0.3).to(device)
    outputs = {fast: [], plain: []}
    for block in range(14):
        for effect, out in outputs.items():
            if block in moves:
                effect.set(*moves[block])
            effect.bypass = block in (10, 11)
            out.append(effect.process(x[:, block * 64 : (block + 1) * 64]).cpu().double().numpy())
    y, ref = (np.concatenate(outputs[e], -1) for e in (fast, plain))
    assert rel_err(y, ref) <= 1e-5
