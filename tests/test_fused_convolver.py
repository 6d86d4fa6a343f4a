"""The fused (Triton) steps around a ``CaptureConvolver``'s tick equal the torch path, block
after block: on a GPU, or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx.kernels.convolution import CaptureConvolver

from conftest import TRITON_DEVICES, as_on_a_gpu, rel_err

pytest.importorskip("triton")


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("rows, channels, taps", [(1, 1, 200), (1, 3, 200), (2, 2, 200), (1, 2, 5)])
def test_fused_convolver_equals_torch(device, rows, channels, taps):
    """A 200-tap IR in blocks of 16 (a head of 16 taps, 12 partitions) or one shorter than the
    head, a short block in between (the torch path, on the same state)."""
    rng = np.random.default_rng(6)
    h = rng.standard_normal((rows, taps)) * np.exp(-np.arange(taps) / 60)
    fast, plain = (CaptureConvolver(h, channels, 16, device) for _ in range(2))
    fast.fused, plain.fused = True, False
    as_on_a_gpu(fast._seg)
    x = rng.standard_normal((channels, 16 * 40)).astype(np.float32)
    sizes = [16] * 20 + [5] + [16] * 19
    outputs, start = {fast: [], plain: []}, 0
    for frames in sizes:
        for conv, out in outputs.items():
            conv.before_block(frames)
            out.append(conv.process(torch.from_numpy(x[:, start : start + frames]).to(device)).cpu().double().numpy())
        start += frames
    y, ref = (np.concatenate(outputs[c], -1) for c in (fast, plain))
    assert rel_err(y, ref) <= 1e-5
    expected = np.stack([scipy.signal.lfilter(h[c % rows], 1.0, x[c].astype(np.float64)) for c in range(channels)])
    assert rel_err(y[:, : start], expected[:, : start]) <= 1e-5  # and it is the convolution
