"""The fused (Triton) pre-delay equals its torch path in capture mode while the delay moves:
on a GPU, or on the CPU under ``TRITON_INTERPRET=1`` (Triton's interpreter)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx.kernels.predelay import PreDelay

from conftest import TRITON_DEVICES

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
