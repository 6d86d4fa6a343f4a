"""Streaming FIR and zero-latency partitioned convolution against one-shot float64 SciPy.

Every kernel, fed any partition of a signal into blocks, must give
``scipy.signal.oaconvolve(x, h)[:len(x)]`` (float64) within ``REL_TOL`` (max abs error over max
abs reference), with no added latency.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx.kernels import nonuniform as nu
from rtfx.kernels.convolution import CaptureConvolver, NonUniformConvolver, PartitionedConvolver, make_convolver
from rtfx.kernels.fir import DirectFIR, check_block


class Captured(CaptureConvolver):
    """The capture-mode convolver driven like the others (its host part before each block)."""

    def process(self, x):
        self.before_block(check_block(x, self.channels, self.max_block))
        return super().process(x)


REL_TOL = 1e-5
KINDS = {
    "direct": DirectFIR,
    "uniform": PartitionedConvolver,
    "nonuniform": NonUniformConvolver,
    "capture": Captured,
    "auto": make_convolver,
}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def decaying_ir(rng, T: int, rows: int | None = None) -> np.ndarray:
    """Noise with an exponential decay (a room), float64, ``(T,)`` or ``(rows, T)``."""
    shape = (T,) if rows is None else (rows, T)
    return rng.standard_normal(shape) * np.exp(-np.arange(T) / (T / 4 + 1))


def reference(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    h = np.broadcast_to(np.atleast_2d(h), (x.shape[0], np.atleast_2d(h).shape[1]))
    x64 = x.astype(np.float64)
    return np.stack([scipy.signal.oaconvolve(x64[c], h[c])[:x.shape[1]] for c in range(x.shape[0])])


def block_sizes(rng, total: int, max_block: int, fixed=(1, 7, 32, 513, 1024)) -> list[int]:
    """The fixed sizes that fit ``max_block`` first, then random ones, summing to ``total``."""
    sizes, left = [], total
    for n in [s for s in fixed if s <= max_block]:
        if left <= 0:
            break
        sizes.append(min(n, left))
        left -= sizes[-1]
    while left > 0:
        sizes.append(min(int(rng.integers(1, max_block + 1)), left))
        left -= sizes[-1]
    return sizes


def stream(kernel, x: np.ndarray, sizes, device="cpu") -> np.ndarray:
    xt = torch.from_numpy(x).to(device)
    out, i = [], 0
    for n in sizes:
        block = xt[:, i:i + n]
        before = block.clone()
        y = kernel.process(block)
        assert y.shape == block.shape and y.dtype == torch.float32 and y.device == block.device
        assert torch.equal(block, before), "process modified its input"
        out.append(y.cpu().numpy().copy())
        i += n
    return np.concatenate(out, axis=1)


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30))


def signal(rng, channels: int, n: int) -> np.ndarray:
    return rng.standard_normal((channels, n)).astype(np.float32)


def check(kind, h, channels, max_block, n, seed=0, device="cpu", **kw):
    rng = np.random.default_rng(seed)
    x = signal(rng, channels, n)
    kernel = KINDS[kind](h, channels, max_block, device, **kw)
    y = stream(kernel, x, block_sizes(rng, n, max_block), device)
    err = rel_err(y, reference(x, h))
    assert err <= REL_TOL, f"{kind}: {len(np.atleast_2d(h)[0])} taps, error {err:.2e}"
    return kernel


# -- exactness -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [1, 2, 31, 64, 65, 1000, 4096, 48000])
def test_mono_ir_on_two_channels(kind, T):
    n = 8000 if (kind == "direct" and T > 4096) else min(3 * T + 3000, 60000)
    check(kind, decaying_ir(np.random.default_rng(T), T), 2, 1024, n)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [65, 4096, 48000])
def test_one_ir_per_channel(kind, T):
    n = 3000 if (kind == "direct" and T > 4096) else min(3 * T + 3000, 60000)
    check(kind, decaying_ir(np.random.default_rng(T), T, rows=3), 3, 256, n)


@pytest.mark.parametrize("kind", ["nonuniform", "auto"])
def test_ten_second_ir(kind):
    """480000 taps (10 s at 48 kHz): a short signal still crosses the first big partitions."""
    h = decaying_ir(np.random.default_rng(480000), 480000)
    kernel = check(kind, h, 2, 64, 40000)
    assert isinstance(kernel, NonUniformConvolver)
    assert kernel.layout[-1].start < 40000 - kernel.layout[-1].size  # the largest one was used


@pytest.mark.parametrize("max_block", [1, 7, 64, 100, 480])
@pytest.mark.parametrize("kind", ["uniform", "nonuniform"])
def test_any_max_block(kind, max_block):
    check(kind, decaying_ir(np.random.default_rng(max_block), 6000), 2, max_block, 20000)


@pytest.mark.parametrize("partition", [16, 48, 100, 256])
def test_partition_sizes(partition):
    h = decaying_ir(np.random.default_rng(partition), 5000)
    check("uniform", h, 2, 256, 12000, partition=partition)
    check("nonuniform", h, 2, 256, 12000, partition=partition)


@pytest.mark.parametrize("channels", [1, 64])
def test_channel_counts(channels):
    rng = np.random.default_rng(channels)
    for kind in KINDS:
        check(kind, decaying_ir(rng, 700, rows=channels), channels, 128, 3000)
        check(kind, decaying_ir(rng, 3000), channels, 64, 6000)


def test_float32_taps_and_one_row():
    h = decaying_ir(np.random.default_rng(5), 2000).astype(np.float32)[None, :]
    for kind in KINDS:
        check(kind, h, 2, 64, 6000)


def test_inference_mode():
    h = decaying_ir(np.random.default_rng(6), 20000)
    with torch.inference_mode():
        check("nonuniform", h, 2, 128, 30000)


# -- streaming behaviour ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_state_carried_two_calls_equal_one(kind):
    rng = np.random.default_rng(11)
    h, x = decaying_ir(rng, 3000), signal(rng, 2, 1000)
    one = KINDS[kind](h, 2, 1000)
    two = KINDS[kind](h, 2, 1000)
    y1 = one.process(torch.from_numpy(x)).clone()
    y2 = torch.cat([two.process(torch.from_numpy(x[:, :377])).clone(),
                    two.process(torch.from_numpy(x[:, 377:])).clone()], dim=1)
    torch.testing.assert_close(y2, y1, rtol=0, atol=1e-5 * float(y1.abs().max()))


@pytest.mark.parametrize("kind", KINDS)
def test_reset_clears_the_tail(kind):
    rng = np.random.default_rng(12)
    h = decaying_ir(rng, 5000)
    kernel = KINDS[kind](h, 2, 256)
    for _ in range(30):  # leave a long tail behind
        kernel.process(torch.from_numpy(signal(rng, 2, 256)))
    kernel.reset()
    impulse = np.zeros((2, 6000), np.float32)
    impulse[:, 0] = 1
    y = stream(kernel, impulse, block_sizes(rng, 6000, 256))
    assert rel_err(y, reference(impulse, h)) <= REL_TOL


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("max_block", [1, 64, 1024])
def test_zero_latency(kind, max_block):
    """An impulse at sample 0 comes out at sample 0, in a call of any length."""
    h = decaying_ir(np.random.default_rng(13), 3000)
    for n in sorted({1, 7, max_block}):
        if n > max_block:
            continue
        kernel = KINDS[kind](h, 2, max_block)
        x = torch.zeros(2, n)
        x[:, 0] = 1
        y = kernel.process(x)
        np.testing.assert_allclose(y[:, 0].numpy(), h[0], rtol=1e-6)
        np.testing.assert_allclose(y[:, :n].numpy(), np.broadcast_to(h[:n], (2, n)),
                                   rtol=0, atol=1e-6 * np.abs(h).max())


def test_sample_by_sample_impulse_response():
    """One-sample calls through every tick boundary reproduce the IR exactly."""
    h = decaying_ir(np.random.default_rng(14), 700)
    for kind in KINDS:
        kernel = KINDS[kind](h, 1, 32)
        x = torch.zeros(1, 1)
        x[0, 0] = 1
        y = [kernel.process(x).clone()]
        x.zero_()
        y += [kernel.process(x).clone() for _ in range(699)]
        assert rel_err(torch.cat(y, 1).numpy(), h[None]) <= REL_TOL


# -- kernel choice and layout ----------------------------------------------------------------
def test_make_convolver_choice():
    rng = np.random.default_rng(15)
    assert isinstance(make_convolver(decaying_ir(rng, 64), 2, 64), DirectFIR)
    assert isinstance(make_convolver(decaying_ir(rng, 96000), 2, 64), NonUniformConvolver)
    assert isinstance(make_convolver(decaying_ir(rng, 6000), 2, 64), (PartitionedConvolver,
                                                                      NonUniformConvolver))


@pytest.mark.parametrize("T,G", [(5000, 64), (96000, 64), (480000, 64), (480000, 256), (96000, 100)])
def test_layout_is_valid(T, G):
    segs = nu.plan_segments(T, G, 2)
    assert segs[0].start == G and segs[0].size == G
    for a, b in zip(segs, segs[1:]):
        assert b.start == a.start + a.count * a.size and b.size > a.size
        assert b.start % b.size == 0 and b.start >= 2 * b.size
        assert b.size <= min(nu.MAX_RATIO * G, nu.MAX_PARTITION)
    assert segs[-1].start + segs[-1].count * segs[-1].size >= T
    for seg, units in zip(segs, nu.spread(segs, 2)):
        ticks = [u[3] for u in units]
        assert ticks == sorted(ticks) and all(0 <= t <= seg.ratio for t in ticks)
        if seg.ratio > 1:
            assert [u[0] for u in units] == sorted((u[0] for u in units),
                                                   key=["fft", "mac", "ifft"].index)


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_bad_taps_raise(kind):
    make = KINDS[kind]
    with pytest.raises(ValueError, match="empty"):
        make(np.zeros(0), 2, 64)
    with pytest.raises(ValueError, match="non-finite.*tap 3"):
        make(np.r_[1.0, 2.0, 3.0, np.nan], 2, 64)
    with pytest.raises(ValueError, match="non-finite"):
        make(np.r_[np.inf, 1.0], 2, 64)
    with pytest.raises(ValueError, match="3 rows for 2 channels"):
        make(np.ones((3, 10)), 2, 64)
    with pytest.raises(ValueError, match="shape"):
        make(np.ones((1, 2, 10)), 2, 64)
    with pytest.raises(ValueError, match="max_block"):
        make(np.ones(10), 2, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_blocks_raise(kind):
    kernel = KINDS[kind](np.ones(100), 2, 64)
    for bad in (torch.zeros(3, 10), torch.zeros(2, 65), torch.zeros(2, 0), torch.zeros(10)):
        with pytest.raises(ValueError, match="block must have shape"):
            kernel.process(bad)


# -- CUDA (run on a GPU machine) -------------------------------------------------------------
@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [1, 65, 4096, 48000])
def test_cuda_matches_oaconvolve(kind, T):
    n = 8000 if (kind == "direct" and T > 4096) else min(3 * T + 3000, 60000)
    check(kind, decaying_ir(np.random.default_rng(T), T), 2, 256, n, device="cuda")
    check(kind, decaying_ir(np.random.default_rng(T), T, rows=2), 2, 64, n, device="cuda")


@pytest.mark.cuda
@cuda
def test_cuda_ten_second_ir_and_zero_latency():
    h = decaying_ir(np.random.default_rng(480000), 480000)
    kernel = check("auto", h, 2, 256, 40000, device="cuda")
    assert isinstance(kernel, PartitionedConvolver)
    kernel.reset()
    x = torch.zeros(2, 1, device="cuda")
    x[:, 0] = 1
    np.testing.assert_allclose(kernel.process(x)[:, 0].cpu().numpy(), h[0], rtol=1e-6)
