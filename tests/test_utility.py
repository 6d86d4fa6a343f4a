"""Utility effects: pan, balance, polarity, routing and the DC blocker."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.effects.utility import balance_gains, pan_gains

from conftest import DEVICES, allocations, rel_err, stream

RATE = 48000


def build(name, channels=2, blocksize=256, device="cpu", **args):
    return EFFECTS[name](**args).prepare(ProcessSpec(RATE, blocksize, channels, device))


def noise(channels, frames=2000, seed=0):
    return 0.3 * np.random.default_rng(seed).standard_normal((channels, frames))


def test_pan_law_is_constant_power_with_a_3db_centre():
    assert pan_gains(-1.0) == pytest.approx((1.0, 0.0), abs=1e-15)
    assert pan_gains(0.0) == pytest.approx((math.sqrt(0.5), math.sqrt(0.5)))
    assert pan_gains(1.0) == pytest.approx((0.0, 1.0), abs=1e-15)
    assert pan_gains(-0.5) == pytest.approx((math.cos(math.pi / 8), math.sin(math.pi / 8)))
    for pan in np.linspace(-1, 1, 41):
        left, right = pan_gains(pan)
        assert left**2 + right**2 == pytest.approx(1.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pan", [-1.0, -0.3, 0.0, 0.6, 1.0])
def test_pan_places_the_mono_sum(pan, device):
    x = noise(2)
    y = stream(build("pan", device=device, pan=pan).process, x, [64, 1, 200], device)
    left, right = pan_gains(pan)
    mono = x.mean(axis=0)
    np.testing.assert_allclose(y, np.stack([left * mono, right * mono]), atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_a_pan_move_ramps_per_sample(device):
    """Hard left to hard right on a constant input: both sides move monotonically, in steps
    no larger than the 30 ms ramp's slope allows (no jump at block or 16-frame step edges)."""
    effect = build("pan", device=device, pan=-1.0)
    x = torch.ones(2, 256, device=device)
    out = [effect.process(x).cpu().double().numpy().copy()]
    effect.set("pan", 1.0)
    out += [effect.process(x).cpu().double().numpy().copy() for _ in range(10)]
    y = np.concatenate(out, axis=-1)
    assert np.all(np.diff(y[0]) <= 1e-7) and np.all(np.diff(y[1]) >= -1e-7)
    slope = (math.pi / 4) * 2 / (0.03 * RATE)  # angle per frame; |d gain| <= |d angle|
    assert np.max(np.abs(np.diff(y, axis=-1))) <= 1.01 * slope
    np.testing.assert_allclose(y[:, -1], [0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("balance, gains", [(-1.0, (1.0, 0.0)), (-0.5, (1.0, math.sqrt(0.5))),
                                            (0.0, (1.0, 1.0)), (0.5, (math.sqrt(0.5), 1.0)),
                                            (1.0, (0.0, 1.0))])
def test_balance_turns_down_the_far_side_only(balance, gains):
    assert balance_gains(balance) == pytest.approx(gains, abs=1e-15)
    x = noise(2)
    y = stream(build("balance", balance=balance).process, x, 100)
    np.testing.assert_allclose(y, np.array(gains)[:, None] * x, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("invert, signs", [("all", (-1, -1, -1)), ("left", (-1, 1, 1)), ("right", (1, -1, 1))])
def test_polarity(invert, signs, device):
    x = noise(3)
    y = stream(build("polarity", channels=3, device=device, invert=invert).process, x, 64, device)
    np.testing.assert_array_equal(y, np.array(signs)[:, None] * x.astype(np.float32))


@pytest.mark.parametrize("device", DEVICES)
def test_routing_modes(device):
    x = noise(3).astype(np.float32).astype(np.float64)
    left, right, third = x
    expected = {
        "stereo": [left, right, third],
        "mono": [x.mean(axis=0)] * 3,
        "left": [left, left, third],
        "right": [right, right, third],
        "swap": [right, left, third],
    }
    for mode, rows in expected.items():
        y = stream(build("routing", channels=3, device=device, mode=mode).process, x, [64, 7], device)
        np.testing.assert_allclose(y, np.stack(rows), atol=1e-6, err_msg=mode)
    mono = stream(build("routing", channels=1, mode="mono").process, x[:1], 64)
    np.testing.assert_allclose(mono, x[:1], atol=1e-7)


def test_channel_and_choice_errors_name_the_effect():
    with pytest.raises(ValueError, match="pan: needs 2 channel"):
        build("pan", channels=1)
    with pytest.raises(ValueError, match="balance: needs 2 channel"):
        build("balance", channels=3)
    with pytest.raises(ValueError, match="routing: needs at least 2 channel"):
        build("routing", channels=1, mode="swap")
    with pytest.raises(ValueError, match="routing: mode = 'surround'; choose one of stereo, mono"):
        EFFECTS["routing"](mode="surround")
    with pytest.raises(ValueError, match="polarity: invert = 'centre'; choose one of all, left, right"):
        EFFECTS["polarity"](invert="centre")


def test_routing_and_polarity_presets_keep_their_choice():
    assert EFFECTS["routing"](mode="left").to_stage() == {"type": "routing", "mode": "left"}
    assert EFFECTS["polarity"](invert="right").to_stage() == {"type": "polarity", "invert": "right"}


# -- DC blocker ----------------------------------------------------------------------------
def test_dc_blocker_removes_dc_and_passes_100hz_within_a_tenth_of_a_db():
    effect = build("dc_blocker")
    t = np.arange(2 * RATE) / RATE
    offset = stream(effect.process, np.full((2, t.size), 0.5), 256)
    assert np.max(np.abs(offset[:, -RATE // 10 :])) < 1e-4  # 0.5 DC gone after 1.9 s
    effect.reset()
    sine = np.stack([np.sin(2 * np.pi * 100 * t), np.cos(2 * np.pi * 100 * t)])
    y = stream(effect.process, sine + 0.25, 256)[:, RATE:]  # a sine riding on DC
    gain_db = 20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(0.5))
    assert abs(gain_db) < 0.1
    assert abs(np.mean(y)) < 1e-3


@pytest.mark.parametrize("cutoff_hz", [5.0, 10.0, 20.0])
def test_dc_blocker_response(cutoff_hz):
    """One pole at ``exp(-2 pi fc / fs)`` and a zero at DC: -3 dB within 0.05 dB at ``fc``,
    unity at Nyquist; the stream equals ``sosfilt`` of its section."""
    effect = build("dc_blocker", cutoff_hz=cutoff_hz)
    _, response = scipy.signal.sosfreqz(effect.sections, worN=[cutoff_hz, RATE / 2], fs=RATE)
    gain_db = 20 * np.log10(np.abs(response))
    assert gain_db[0] == pytest.approx(-3.01, abs=0.05)
    assert gain_db[1] == pytest.approx(0.0, abs=1e-9)
    x = noise(2, 5000) + 0.2
    reference = scipy.signal.sosfilt(effect.sections, x, axis=-1)
    assert rel_err(stream(effect.process, x, [1, 7, 64, 200]), reference) < 1e-5


@pytest.mark.parametrize("name, args", [("pan", {}), ("balance", {}), ("polarity", {}), ("routing", {"mode": "swap"}),
                                        ("dc_blocker", {})])
def test_process_allocates_nothing(name, args):
    """Steady blocks, and for pan and balance a parameter ramp too (the matrix ramp)."""

    effect = build(name, **args)
    blocks = [torch.randn(2, n) for n in (256, 128, 64)]
    effect.process(blocks[0])
    if name in ("pan", "balance"):
        effect.set(name, 0.8)
    assert allocations(effect, blocks * 2) == []
