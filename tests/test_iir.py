"""Streaming SOS cascades against scipy.signal.sosfilt in float64."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import torch

from rtfx.design import BAND_TYPES, FAMILIES
from rtfx.kernels.iir import SosFilter, block_matrix
from rtfx.kernels.ramp import GRAMIAN_DELTA, compose_steps, input_normal_basis, section_gramians
from rtfx.kernels.sos import check_sos

from conftest import DEVICES, rel_err, stream

TOLERANCE = 1e-5
# Conditioning rule: a design is well conditioned when float32 scipy.sosfilt itself stays
# within 1e-5 of float64; there rtfx must too. Beyond it (poles within ~1e-3 of the unit
# circle: low cutoffs, high orders, Chebyshev ripple) rtfx must be no worse than float32
# sosfilt. Thanks to the balanced state basis it is usually 10-1000x better there.
PARTITIONS = [1, 7, 513, 4096, "random", (64, 3, 250)]


def max_pole_radius(sos: np.ndarray) -> float:
    return max(float(np.max(np.abs(np.roots(s[3:])))) for s in sos)


def random_design(seed: int) -> np.ndarray:
    """A random classic design: every family and band type, order 1-16 (band types 1-8, i.e.
    2-16 poles), lower edge log-uniform in 0.002-0.6 of Nyquist (48 Hz-14 kHz at 48 kHz)."""
    rng = np.random.default_rng(seed)
    family = FAMILIES[seed % len(FAMILIES)]
    btype = BAND_TYPES[(seed // len(FAMILIES)) % len(BAND_TYPES)]
    band = btype in ("bandpass", "bandstop")
    order = int(rng.integers(1, 9 if band else 17))
    low = float(np.exp(rng.uniform(np.log(0.002), np.log(0.6))))
    edges = [low, float(min(0.95, low * np.exp(rng.uniform(0.3, 3))))] if band else low
    return scipy.signal.iirfilter(
        order, edges, rp=float(rng.uniform(0.1, 2)), rs=float(rng.uniform(30, 80)),
        btype=btype, ftype=family, output="sos",
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(40))
def test_random_designs_match_sosfilt_for_any_partition(seed, device):
    sos = random_design(seed)
    x = np.random.default_rng(seed).standard_normal((2, 9000))
    reference = scipy.signal.sosfilt(sos, x, axis=-1)
    float32_scipy = scipy.signal.sosfilt(sos.astype(np.float32), x.astype(np.float32), axis=-1)
    bound = max(TOLERANCE, rel_err(float32_scipy, reference))
    for sizes in PARTITIONS:
        kernel = SosFilter(sos, 2, 4096, device)
        error = rel_err(stream(kernel.process, x, sizes, device, seed=seed), reference)
        assert error <= bound, (sizes, error, bound)


def test_balanced_basis_beats_float32_df2t_at_low_frequencies():
    """A 14th-order 240 Hz lowpass: float32 DF2T loses 1e-4; rtfx stays near 1e-6."""
    sos = scipy.signal.butter(14, 0.01, output="sos")
    x = np.random.default_rng(9).standard_normal((1, 20000))
    reference = scipy.signal.sosfilt(sos, x, axis=-1)
    error = rel_err(stream(SosFilter(sos, 1, 256).process, x, 256), reference)
    float32_scipy = rel_err(scipy.signal.sosfilt(sos.astype(np.float32), x.astype(np.float32), axis=-1), reference)
    assert error < 1e-5 < float32_scipy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sections", [1, 4, 8])
def test_every_order_and_device(device, sections):
    sos = scipy.signal.butter(2 * sections, 0.25, output="sos")
    x = np.random.default_rng(sections).standard_normal((3, 5000))
    reference = scipy.signal.sosfilt(sos, x, axis=-1)
    for sizes in PARTITIONS:
        kernel = SosFilter(sos, 3, 4096, device)
        assert rel_err(stream(kernel.process, x, sizes, device), reference) <= TOLERANCE


def test_state_is_scipy_zi():
    sos = scipy.signal.ellip(6, 1, 60, 0.3, output="sos")
    x = np.random.default_rng(0).standard_normal((2, 300))
    _, zf = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.zeros((3, 2, 2)))
    kernel = SosFilter(sos, 2, 512)
    kernel.process(torch.from_numpy(x).float())
    assert np.allclose(kernel.zi, zf, atol=1e-5 * np.abs(zf).max())
    kernel.zi = zf
    tail = np.random.default_rng(1).standard_normal((2, 64))
    ref, _ = scipy.signal.sosfilt(sos, tail, axis=-1, zi=zf)
    assert rel_err(kernel.process(torch.from_numpy(tail).float()).double().numpy(), ref) < TOLERANCE
    kernel.reset()
    assert not kernel.zi.any()


def test_block_matrix_is_exact_state_space():
    sos = scipy.signal.cheby1(4, 1, 0.2, output="sos")
    rng = np.random.default_rng(2)
    x, zi = rng.standard_normal(37), rng.standard_normal((2, 2))
    y, zf = scipy.signal.sosfilt(sos, x, zi=zi)
    out = np.concatenate([zi.reshape(-1), x]) @ block_matrix(sos, 37)
    assert np.allclose(out[4:], y, atol=1e-12) and np.allclose(out[:4], zf.reshape(-1), atol=1e-12)


def test_coefficient_change_keeps_the_input_normal_state():
    """The state carries over in input-normal coordinates: DF2T ``s`` becomes ``s T_old T_new^-1``."""
    slow, fast = scipy.signal.butter(2, 0.1, output="sos"), scipy.signal.butter(2, 0.12, output="sos")
    x = np.random.default_rng(3).standard_normal((1, 512))
    y1, zf = scipy.signal.sosfilt(slow, x[:, :256], axis=-1, zi=np.zeros((1, 1, 2)))
    normal, normal_inv = input_normal_basis(np.stack([slow, fast]))
    zf = (zf.reshape(1, 2) @ normal[0] @ normal_inv[1]).reshape(1, 1, 2)
    y2, _ = scipy.signal.sosfilt(fast, x[:, 256:], axis=-1, zi=zf)
    kernel = SosFilter(slow, 1, 256)
    first = kernel.process(torch.from_numpy(x[:, :256]).float()).double().numpy().copy()
    kernel.set_sos(fast)
    second = kernel.process(torch.from_numpy(x[:, 256:]).float()).double().numpy()
    assert rel_err(np.hstack([first, second]), np.hstack([y1, y2])) < TOLERANCE


@pytest.mark.parametrize(
    "sos, message",
    [
        ([[1, 0, 0, 1, 0, 1.01]], "section 0 is unstable"),
        ([[1, 0, 0, 1, -2.0, 1.0]], "unstable"),
        ([[1, 0, 0, 0, 0, 0]], "a0 = 0"),
        ([[1, 0, 0, 1]], "shape"),
        ([[np.nan, 0, 0, 1, 0, 0]], "NaN"),
    ],
)
def test_bad_sections_are_rejected(sos, message):
    with pytest.raises(ValueError, match=message):
        check_sos(sos)


@pytest.mark.parametrize("device", DEVICES)
def test_whole_file_in_one_call_uses_the_scan(device):
    sos = scipy.signal.ellip(8, 0.5, 70, [0.1, 0.3], btype="bandpass", output="sos")
    x = np.random.default_rng(5).standard_normal((4, 48000))
    kernel = SosFilter(sos, 4, x.shape[1], device)
    assert x.shape[1] // kernel.chunk > kernel._direct_chunks  # the tree path
    y = kernel.process(torch.from_numpy(x).float().to(device)).double().cpu().numpy()
    assert rel_err(y, scipy.signal.sosfilt(sos, x, axis=-1)) <= TOLERANCE


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pieces", [[48000], [128 * 16 * 7 + 128 * 3 + 5, 30000], [128 * 65, 128 * 130, 9000]])
def test_scan_over_groups_carries_the_state(device, pieces):
    """Long blocks (whole groups, a partial last group, a remainder) one after another equal
    one sosfilt run, and the state left behind is sosfilt's end state."""
    sos = scipy.signal.butter(8, 200, fs=48000, output="sos")
    x = np.random.default_rng(6).standard_normal((3, sum(pieces)))
    kernel = SosFilter(sos, 3, max(pieces), device)
    bounds = np.cumsum([0] + pieces)
    y = np.concatenate([kernel.process(torch.from_numpy(x[:, a:b]).float().to(device)).double().cpu().numpy()
                        for a, b in zip(bounds[:-1], bounds[1:])], axis=1)
    ref, end = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.zeros((4, 3, 2)))
    assert rel_err(y, ref) <= TOLERANCE
    assert np.abs(kernel.zi - end).max() <= TOLERANCE * np.abs(end).max()


@pytest.mark.parametrize("device", DEVICES)
def test_a_tree_of_four_levels_carries_the_state(device):
    """Chunks of 2 frames over 300 000 frames make a tree of four levels (16, 64, 64 and the
    top; a long cascade gets narrower levels): every level's partial last group and the state
    left behind match sosfilt."""
    sos = scipy.signal.butter(4, 300, fs=48000, output="sos")
    x = np.random.default_rng(7).standard_normal((2, 300_001))
    kernel = SosFilter(sos, 2, x.shape[1], device, chunk=2)
    assert kernel._fans == [16, 64, 64, 64]
    y = kernel.process(torch.from_numpy(x).float().to(device)).double().cpu().numpy()
    ref, end = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.zeros((2, 2, 2)))
    assert rel_err(y, ref) <= TOLERANCE
    assert np.abs(kernel.zi - end).max() <= TOLERANCE * np.abs(end).max()
    long = scipy.signal.butter(16, 2000, fs=48000, output="sos")  # 8 sections: levels of 16
    kernel = SosFilter(long, 2, x.shape[1], device, chunk=2)
    assert kernel._fans == [16, 16, 16, 16, 16]
    y = kernel.process(torch.from_numpy(x).float().to(device)).double().cpu().numpy()
    assert rel_err(y, scipy.signal.sosfilt(long, x, axis=-1)) <= TOLERANCE


def test_a_ramp_composed_into_one_matrix_equals_the_stepped_ramp():
    """``ramp_block`` (capture mode) and ``process_ramp`` on a block of one chunk fold a block's
    coefficient steps into one matrix; both filter exactly like ``process_ramp`` stepping
    through them (a filter whose chunk is longer than the block), and the still blocks after
    a ramp carry on the same."""
    rate, block, step = 48000, 64, 4
    freqs = np.geomspace(300, 3000, 3 * block // step)
    designs = np.stack([scipy.signal.butter(4, f, fs=rate, output="sos") for f in freqs])
    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((2, 6 * block)).astype(np.float32))
    stepped = SosFilter(designs[0], 2, 2 * block)  # chunk 128: the step-by-step scan
    captured, composed = (SosFilter(designs[0], 2, block) for _ in range(2))
    assert not stepped.can_ramp_block(block, step) and composed.can_ramp_block(block, step)
    outs = [[], [], []]
    for i, piece in enumerate(x.split(block, -1)):
        if i in (1, 2, 3):  # three blocks of moving coefficients, then still ones
            steps = designs[(i - 1) * block // step : i * block // step]
            outs[0].append(stepped.process_ramp(piece, steps, step).clone())
            outs[1].append(composed.process_ramp(piece, steps, step).clone())
            captured.ramp_block(steps, step)
        else:
            outs[0].append(stepped.process(piece).clone())  # a view: valid until the next call
            outs[1].append(composed.process(piece).clone())
            captured.before_block(block)
        outs[2].append(captured.process(piece).clone())
    reference, *others = (torch.cat(o, -1).double().numpy() for o in outs)
    for other in others:
        assert rel_err(other, reference) <= 1e-5


@pytest.mark.parametrize("count", [1, 2, 3, 5, 6, 7, 16])
def test_composed_steps_equal_the_steps_one_after_another(count):
    """``compose_steps`` pairs neighbours level by level (an odd step waits for the end); the
    result is the map of running the steps in order."""
    rng = np.random.default_rng(count)
    n, k = 4, 3
    operators = rng.standard_normal((count, n + k, n + k)) * 0.4
    start = rng.standard_normal((n, n))
    state = np.vstack([start, np.zeros((count * k, n))])  # rows: [z, x]; columns: the state
    expected = np.zeros((n + count * k, n + count * k))
    for i, op in enumerate(operators):  # the definition: the state moves on, step by step
        inputs = np.zeros((n + count * k, k))
        inputs[n + i * k : n + (i + 1) * k] = np.eye(k)
        expected[:, n + i * k : n + (i + 1) * k] = state @ op[:n, n:] + inputs @ op[n:, n:]
        state = state @ op[:n, :n] + inputs @ op[n:, :n]
    expected[:, :n] = state
    assert np.allclose(compose_steps(operators, start), expected, atol=1e-12)


def test_section_gramians_solve_the_lyapunov_equation():
    """The closed-form 2x2 Gramians equal scipy's discrete Lyapunov solution for sections all
    over the stability triangle."""
    rng = np.random.default_rng(11)
    a2 = rng.uniform(-0.99, 0.99, 200)
    a1 = rng.uniform(-1, 1, 200) * (1 + a2) * 0.99
    g1, g2 = rng.standard_normal((2, 200))
    p11, p12, p22 = section_gramians(a1, a2, g1, g2)
    for i in range(0, 200, 7):
        a = np.array([[-a1[i], 1.0], [-a2[i], 0.0]])
        g = np.array([g1[i], g2[i]])
        p = scipy.linalg.solve_discrete_lyapunov(a, np.outer(g, g) + GRAMIAN_DELTA * np.eye(2))
        assert np.allclose([p11[i], p12[i], p22[i]], [p[0, 0], p[0, 1], p[1, 1]], rtol=1e-9, atol=1e-12)
