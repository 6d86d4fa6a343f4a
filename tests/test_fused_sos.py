"""The fused (Triton) SOS piece equals the torch matmuls, block after block, while the
coefficients move: on a GPU, or on the CPU under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx.kernels import fused_sos
from rtfx.kernels.iir import SosFilter

from conftest import TRITON_DEVICES, partition, rel_err

pytest.importorskip("triton")


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("order", [2, 8, 18])
def test_fused_piece_equals_torch(device, order):
    """Blocks of the chunk and shorter pieces; a coefficient change halfway; 3 channels."""
    first = scipy.signal.butter(order, 0.05, output="sos")
    second = scipy.signal.butter(order, [0.1, 0.3], "bandpass", output="sos")[: len(first)]
    filters = [SosFilter(first, 3, 64, device) for _ in range(2)]
    filters[0].fused, filters[1].fused = True, False
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 2000)).astype(np.float32)).to(device)
    outputs, start = [[], []], 0
    for i, frames in enumerate(partition(2000, [64, 64, 7, 64, 33, 1])):
        for f, out in zip(filters, outputs):
            if i == 12:
                f.set_sos(second)
            out.append(f.process(x[:, start : start + frames]).cpu().double().numpy())
        start += frames
    y, ref = (np.concatenate(out, -1) for out in outputs)
    assert rel_err(y, ref) <= 1e-5
    reference = scipy.signal.sosfilt(first, x.cpu().double().numpy()[:, :300])
    assert rel_err(y[:, :300], reference) <= 1e-5  # and it is the filter


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("states, frames", [(18, 64), (8, 64), (8, 5)])
def test_piece_over_programs(device, states, frames):
    """``piece`` with both gains and the blend equals the matmul, launch after launch on one
    ticket; 18 + 64 columns take 6 programs, 8 + 5 one."""
    rng = np.random.default_rng(states + frames)
    width = states + frames

    def normal(*shape):
        return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(device)

    matrix, state, out = normal(width, width) / width**0.5, normal(3, states), torch.zeros(3, width, device=device)
    ticket = torch.zeros(1, dtype=torch.int32, device=device)
    expected = state.clone()
    for _ in range(4):
        x, dry = normal(3, frames), normal(3, frames)
        gain_in, gain_out, amounts = normal(frames), normal(frames), normal(frames)
        joined = torch.cat([expected, x * gain_in], 1) @ matrix
        expected, wet = joined[:, :states], joined[:, states:] * gain_out
        y = fused_sos.piece(x, state, matrix, out, ticket, gain_in, gain_out, (dry, amounts))
        assert rel_err(y.cpu().numpy(), (dry + amounts * (wet - dry)).cpu().numpy()) <= 1e-5
        assert rel_err(state.cpu().numpy(), expected.cpu().numpy()) <= 1e-5
    assert ticket.item() == 0
    with pytest.raises(ValueError):  # y would overwrite x while other programs read it
        fused_sos.piece(out[:, states:], state, matrix, out, ticket)
