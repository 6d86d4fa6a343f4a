"""A ``CaptureConvolver`` with a far segment (large partitions, a result's work spread over the
ticks by channel group) is the convolution: its torch path on the CPU, its Triton kernels on a
GPU or under ``TRITON_INTERPRET=1``, and a CUDA graph replaying them."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.kernels.convolution import CaptureConvolver
from rtfx.kernels.far import far_ratio
from rtfx.stream import BlockProcessor

from conftest import CUDA, TRITON_DEVICES, rel_err

#: Blocks of 16 with shorter ones between (ticks off the block boundaries, calls without one).
SIZES = [16] * 30 + [5] + [16] * 20 + [11, 3] + [16] * 40


def decaying_ir(rows: int, taps: int, channels: int = 1, seed: int = 3) -> np.ndarray:
    """``rows`` distinct IRs; for ``channels`` > ``rows`` repeated over the channels (``(channels,
    taps)``: a stereo IR spread over 4 channels, say)."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((rows, taps)) * np.exp(-np.arange(taps) / (taps / 3))
    return h if rows == 1 else np.tile(h, (channels // rows, 1))


def run(convolvers, x: np.ndarray, device) -> list[np.ndarray]:
    """Each convolver's output for ``x`` ``(C, frames)`` in calls of ``SIZES``; a reset and the
    first 300 frames again at the end (equal to the start)."""
    outputs = [[] for _ in convolvers]
    sizes = SIZES + [None] + [16] * 18 + [12]
    start = 0
    for frames in sizes:
        for conv, out in zip(convolvers, outputs):
            if frames is None:
                conv.reset()
                continue
            conv.before_block(frames)
            out.append(conv.process(torch.from_numpy(x[:, start : start + frames]).to(device)).cpu().double().numpy())
        start = 0 if frames is None else start + frames
    return [np.concatenate(out, -1) for out in outputs]


def expected(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    rows = h.shape[0]
    return np.stack([scipy.signal.lfilter(h[c % rows], 1.0, x[c].astype(np.float64)) for c in range(x.shape[0])])


@pytest.mark.parametrize("rows, channels, ratio, taps", [(1, 4, 4, 700), (2, 4, 2, 300), (1, 2, 2, 129), (8, 8, 8, 2100)])
def test_the_far_segment_is_the_convolution(rows, channels, ratio, taps):
    """The torch path (CPU): a far segment from 2Q = 32 R taps; also an IR ending one tap in."""
    h = decaying_ir(rows, taps, channels)
    x = np.random.default_rng(4).standard_normal((channels, 16 * 120)).astype(np.float32)
    conv = CaptureConvolver(h, channels, 16, "cpu", far=ratio)
    assert conv._far is not None and conv._far.Q == 16 * ratio
    y, = run([conv], x, "cpu")
    played = sum(SIZES)
    ref = expected(h, x)
    assert rel_err(y[:, :played], ref[:, :played]) <= 1e-5
    assert rel_err(y[:, played:], ref[:, : y.shape[1] - played]) <= 1e-5  # after the reset


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("rows, channels, ratio, taps", [(1, 4, 4, 700), (2, 4, 2, 300)])
def test_fused_far_kernels_equal_torch(device, rows, channels, ratio, taps):
    h = decaying_ir(rows, taps, channels)
    x = np.random.default_rng(5).standard_normal((channels, 16 * 120)).astype(np.float32)
    fast, plain = (CaptureConvolver(h, channels, 16, device, far=ratio) for _ in range(2))
    fast.fused = fast._far.fused = True
    plain.fused = plain._far.fused = False
    y, ref = run([fast, plain], x, device)
    assert rel_err(y, ref) <= 1e-5
    played = sum(SIZES)
    assert rel_err(y[:, :played], expected(h, x)[:, :played]) <= 1e-5


def test_far_ratio_takes_long_irs_on_many_channels():
    assert far_ratio(480000, 128, 64) == 32  # 10 s, 64 channels: 245 MB a tick
    assert far_ratio(65536, 64, 32) == 32
    assert far_ratio(96000, 64, 2) == 0  # the guitar rack's 2 s reverb: 1.5 MB
    assert far_ratio(480000, 128, 3) == 0  # no power of two above 1 divides 3 channels
    assert far_ratio(480000, 128, 6) == 2
    assert far_ratio(9000, 128, 64) == 0  # shorter than 4 Q


@pytest.mark.cuda
@CUDA
def test_a_graph_with_a_far_segment_equals_the_cpu():
    """32 channels, a 65536-tap IR at 64 frames: a far segment of R = 32 replayed from one
    graph, against the CPU's own convolver."""
    pytest.importorskip("triton")
    taps = decaying_ir(1, 65536)[0].astype(np.float32) * 0.05
    spec = ProcessSpec(48000, 64, 32, "cuda")
    graph = BlockProcessor(EFFECTS["convolution"](taps=taps), spec, graph=True)
    assert graph.runner.chain._kernel._far is not None  # the chain is the one effect
    cpu = BlockProcessor(EFFECTS["convolution"](taps=taps), ProcessSpec(48000, 64, 32, "cpu"))
    x = np.random.default_rng(6).standard_normal((64 * 400, 32)).astype(np.float32) * 0.3
    y, ref = np.zeros_like(x), np.zeros_like(x)
    for i in range(400):
        block = slice(64 * i, 64 * (i + 1))
        graph.process(x[block], y[block])
        cpu.process(x[block], ref[block])
    assert rel_err(y, ref) <= 1e-5
