"""The fused (Triton) ring product of a ``RingSegment`` equals the torch path, tick after tick:
on a GPU, or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx.kernels.upols import RingSegment

from conftest import TRITON_DEVICES, rel_err

pytest.importorskip("triton")


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("rows, channels", [(1, 1), (2, 2), (1, 20), (2, 6)])
def test_fused_ring_equals_torch(device, rows, channels):
    """Mono and stereo IRs, one to twenty channels (more than a program's group of 16); the
    ring wraps several times (K = 5 partitions, 23 ticks)."""
    rng = np.random.default_rng(2)
    h = rng.standard_normal((rows, 5 * 16)) * np.exp(-np.arange(80) / 30)
    fast, plain = (RingSegment(h, 0, 16, 5, channels, device) for _ in range(2))
    fast.fused, plain.fused = True, False
    x = torch.from_numpy(rng.standard_normal((channels, 16 * 24)).astype(np.float32)).to(device)
    outputs = {fast: [], plain: []}
    for b in range(1, 24):
        slot = torch.tensor([b % 5], device=device)
        for segment, out in outputs.items():
            out.append(segment.tick(x[:, (b - 1) * 16 : (b + 1) * 16], slot).cpu().double().numpy())
    y, ref = (np.concatenate(outputs[s], -1) for s in (fast, plain))
    assert rel_err(y, ref) <= 1e-5
    torch.testing.assert_close(fast.X, plain.X)  # the same ring
