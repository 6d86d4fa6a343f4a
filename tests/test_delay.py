"""Delay line kernel and the echo delay, against straightforward per-sample references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rtfx import ProcessSpec
from rtfx.effects.delay import FADE_MS, Delay, note_ms
from rtfx.kernels.delayline import INTERPOLATIONS, DelayLine, tap_weights
from rtfx.kernels.onepole import lowpass_pole

from conftest import DEVICES, rel_err, stream

RATE = 48000


def interpolate(line: np.ndarray, position: float, kind: str) -> float:
    """One interpolated read of a 1-D history ``line`` (zeros before index 0)."""
    first = math.floor(position)
    weights = tap_weights(kind, position - first)
    first -= len(weights) // 2 - 1
    return sum(w * line[first + k] if first + k >= 0 else 0.0 for k, w in enumerate(weights))


def noise(frames: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    return 0.5 * np.random.default_rng(seed).standard_normal((channels, frames))


@pytest.mark.parametrize("kind", INTERPOLATIONS)
@pytest.mark.parametrize("device", DEVICES)
def test_delay_line_reads_match_per_sample_interpolation(kind, device):
    frames, block = 3000, 64
    x = noise(frames)
    delays = 2 + 150 * np.random.default_rng(1).random((2, frames))
    line = DelayLine(2, 152, block, device, kind)  # small history: the buffer shifts often
    out, fixed = torch.empty(2, block, device=device), torch.empty(2, block, device=device)
    moving, steady = [], []
    for start in range(0, frames, block):
        part = torch.tensor(x[:, start : start + block], dtype=torch.float32, device=device)
        n = part.shape[-1]
        line.write(part)
        first = line.now - n
        positions = torch.tensor(first + np.arange(n) - delays[:, start : start + n], device=device)
        moving.append(line.read(positions, out[:, :n]).cpu().double().numpy().copy())
        steady.append(line.read_fixed(first, 37.25, n, fixed).cpu().double().numpy().copy())
    for got, delay in ((moving, delays), (steady, np.full((2, frames), 37.25))):
        ref = np.array([[interpolate(x[c], t - delay[c, t], kind) for t in range(frames)] for c in range(2)])
        assert rel_err(np.concatenate(got, axis=-1), ref) <= 2e-6


@pytest.mark.parametrize("kind, degree", [("linear", 1), ("lagrange", 3), ("hermite", 2)])
def test_interpolators_are_exact_at_integers_and_reproduce_polynomials(kind, degree):
    weights = tap_weights(kind, 0.0)
    assert weights[len(weights) // 2 - 1] == 1.0 and sum(map(abs, weights)) == 1.0
    polynomial = np.polynomial.Polynomial([0.3, -2.0, 0.5, 1.0][: degree + 1])
    assert interpolate(polynomial(np.arange(8.0)), 4.3, kind) == pytest.approx(polynomial(4.3))


def delay_reference(x, delay, feedback, high_cut_hz, ping_pong=False, kind="lagrange"):
    """The echo delay, one sample at a time, in float64."""
    channels, frames = x.shape
    a = lowpass_pole(high_cut_hz, RATE)
    line, wet, low = np.zeros((channels, frames)), np.zeros((channels, frames)), np.zeros(channels)
    for n in range(frames):
        wet[:, n] = [interpolate(line[c], n - delay, kind) for c in range(channels)]
        low = (1 - a) * wet[:, n] + a * low
        if ping_pong:
            line[:, n] = feedback * np.roll(low, 1)
            line[0, n] += x[:, n].mean()
        else:
            line[:, n] = x[:, n] + feedback * low
    return wet


def build(device="cpu", blocksize=256, channels=2, **kwargs):
    kwargs.setdefault("mix", 1.0)
    return Delay(**kwargs).prepare(ProcessSpec(RATE, blocksize, channels, device))


def test_integer_delay_without_feedback_is_a_shift():
    x = noise(4000)
    y = stream(build(time_ms=10.0, feedback=0.0).process, x, 256)
    np.testing.assert_allclose(y[:, 480:], x[:, :-480], atol=1e-7)
    np.testing.assert_array_equal(y[:, :480], 0.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ping_pong", [False, True])
def test_fractional_delay_with_filtered_feedback_matches_the_loop(device, ping_pong):
    x = noise(5000) * np.exp(-np.arange(5000) / 800)
    time_ms = 12.3456  # 592.589 samples
    ref = delay_reference(x, time_ms * 48, 0.8, 3000.0, ping_pong)
    for blocksize, sizes in ((256, 256), (256, [1, 7, 64, 200]), (4096, 4096), (4096, "random")):
        effect = build(device, blocksize, time_ms=time_ms, feedback=0.8, high_cut_hz=3000.0, ping_pong=ping_pong)
        assert rel_err(stream(effect.process, x, sizes, device=device, seed=2), ref) <= 1e-5, (blocksize, sizes)


def test_feedback_loop_shorter_than_the_block_runs_in_sub_blocks():
    """10 ms (480 samples) of feedback delay inside 4096-frame blocks."""
    x = noise(6000) * (np.arange(6000) < 300)
    ref = delay_reference(x, 480.0, 0.9, 20000.0)
    y = stream(build(blocksize=4096, time_ms=10.0, feedback=0.9, high_cut_hz=20000.0).process, x, 4096)
    assert rel_err(y, ref) <= 1e-5
    assert np.abs(y[:, 10 * 480 :]).max() > 0.1  # ten repeats in, still there


def test_ping_pong_alternates_channels():
    x = np.zeros((2, 48 * 100))
    x[:, 0] = 1.0  # an impulse on both sides: mono in, first echo left only
    y = stream(build(time_ms=20.0, feedback=0.5, high_cut_hz=20000.0, ping_pong=True).process, x, 256)
    energy = [np.abs(y[:, k * 960 - 5 : k * 960 + 5]).sum(axis=-1) for k in range(1, 5)]
    for k, (left, right) in enumerate(energy, start=1):
        loud, quiet = (left, right) if k % 2 else (right, left)
        assert loud > 0.3 * 0.5 ** (k - 1) and quiet < 1e-6, (k, left, right)


@pytest.mark.parametrize("note, bpm, ms", [("1/4", 120, 500.0), ("1/8", 120, 250.0), ("1/8d", 120, 375.0),
                                           ("1/8t", 120, 500 / 3), ("1/16", 90, 500 / 3), ("1/2d", 60, 3000.0)])
def test_note_lengths_at_bpm(note, bpm, ms):
    assert note_ms(note, bpm) == pytest.approx(ms)


def test_synced_delay_echoes_one_note_later():
    x = np.zeros((1, RATE))
    x[0, 0] = 1.0
    effect = build(channels=1, note="1/8d", bpm=150.0, feedback=0.0)
    y = stream(effect.process, x, 256)
    assert np.argmax(np.abs(y[0])) == round(note_ms("1/8d", 150.0) * 48) == 14400
    with pytest.raises(ValueError, match="delay: note = '1/7'"):
        Delay(note="1/7")


def test_time_change_crossfades_without_clicks():
    t = np.arange(RATE) / RATE
    x = 0.5 * np.sin(2 * np.pi * 220 * t)[None]
    effect = build(channels=1, time_ms=100.0, feedback=0.0)
    xt = torch.tensor(x, dtype=torch.float32)
    out = []
    for i, start in enumerate(range(0, RATE, 256)):
        if i == 80:
            effect.set("time_ms", 333.3)
        out.append(effect.process(xt[:, start : start + 256]).double().numpy().copy())
    y = np.concatenate(out, axis=-1)
    steady_step = np.abs(np.diff(y[:, 6000:80 * 256])).max()
    assert np.abs(np.diff(y[:, 6000:])).max() <= 1.05 * steady_step
    after = 80 * 256 + round(FADE_MS * 48)
    delay = 333.3 * 48
    ref = np.array([interpolate(x[0], n - delay, "lagrange") for n in range(after, RATE)])
    np.testing.assert_allclose(y[0, after:], ref, atol=2e-6)
