"""The fused (Triton) FIR equals ``DirectFIR`` block after block, for any block lengths, mono or
per-channel taps: on a GPU, or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx.kernels.fir import DirectFIR
from rtfx.kernels.fused_fir import FusedFIR

from conftest import TRITON_DEVICES, partition, rel_err

pytest.importorskip("triton")


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("rows, num_taps, max_block", [(1, 1, 64), (1, 700, 64), (3, 300, 64), (1, 200, 300)])
def test_fused_fir_equals_direct(device, rows, num_taps, max_block):
    """Blocks of one tile of output frames and less; with 300-frame blocks, several tiles."""
    rng = np.random.default_rng(num_taps)
    taps = rng.standard_normal((rows, num_taps))
    fused, direct = FusedFIR(taps, 3, max_block, device), DirectFIR(taps, 3, max_block, device, capture=True)
    x = torch.from_numpy(rng.standard_normal((3, 3000)).astype(np.float32)).to(device)
    outputs, start = [[], []], 0
    for frames in partition(3000, [max_block, max_block, 5, 64, 33, 1]):
        for kernel, out in zip((fused, direct), outputs):
            kernel.before_block(frames)
            out.append(kernel.process(x[:, start : start + frames]).cpu().double().numpy())
        start += frames
    y, ref = (np.concatenate(out, -1) for out in outputs)
    assert rel_err(y, ref) <= 1e-5
    expected = scipy.signal.lfilter(np.broadcast_to(taps, (3, num_taps))[0], [1.0], x.cpu().double().numpy()[0])
    assert rel_err(y[0], expected) <= 1e-5  # and it is the filter
    fused.reset()
    fused.before_block(64)
    assert rel_err(fused.process(x[:, :64]).cpu().numpy(), y[:, :64]) <= 1e-6  # reset: no history


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_fused_fir_folds_gain_and_blend(device):
    taps = np.random.default_rng(1).standard_normal(500)
    fused, direct = FusedFIR(taps, 2, 64, device), DirectFIR(taps, 2, 64, device, capture=True)
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 64)).astype(np.float32)).to(device)
    gain, amounts = (torch.linspace(a, b, 64, device=device) for a, b in ((0.5, 2.0), (0.2, 0.9)))
    fused.before_block(64)
    direct.before_block(64)
    y = fused.process(x, gain, (x, amounts))
    wet = direct.process(x) * gain
    assert rel_err(y.cpu().numpy(), (x + amounts * (wet - x)).cpu().numpy()) <= 1e-5
