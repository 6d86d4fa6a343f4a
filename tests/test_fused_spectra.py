"""The fused (Triton) ring product of a ``RingSegment`` equals the torch path, tick after tick:
on a GPU, or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx.kernels.upols import RingSegment

from conftest import TRITON_DEVICES, as_on_a_gpu, rel_err

pytest.importorskip("triton")


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("rows, channels", [(1, 1), (2, 2), (1, 20), (2, 6)])
@pytest.mark.parametrize("Q", [24, 160])  # 2Q = 320 > DIRECT_MAX: the spectrum from an FFT
def test_fused_ring_equals_torch(device, rows, channels, Q):
    """Mono and stereo IRs, one to twenty channels (more than a program's group of 16); the
    ring wraps several times (K = 5 partitions, 23 ticks)."""
    rng = np.random.default_rng(2)
    h = rng.standard_normal((rows, 5 * Q)) * np.exp(-np.arange(5 * Q) / (2 * Q))
    fast, plain = (RingSegment(h, 0, Q, 5, channels, device) for _ in range(2))
    as_on_a_gpu(fast)
    plain.fused = False
    x = torch.from_numpy(rng.standard_normal((channels, Q * 24)).astype(np.float32)).to(device)
    outputs = {fast: [], plain: []}
    for b in range(1, 24):
        slot = torch.tensor([b % 5], device=device)
        for segment, out in outputs.items():
            out.append(segment.tick(x[:, (b - 1) * Q : (b + 1) * Q], slot).cpu().double().numpy())
    y, ref = (np.concatenate(outputs[s], -1) for s in (fast, plain))
    assert rel_err(y, ref) <= 1e-5
    torch.testing.assert_close(fast.X, plain.X)  # the same ring
