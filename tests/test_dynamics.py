"""Dynamics: envelope scans against sample loops; compressor, limiter, gate and de-esser physics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.kernels.dynamics import release_for_cascade
from rtfx.kernels.envelope import DecayingMax, LatestIndex, OnePole, Smoother, sliding_max

from conftest import DEVICES, partition, rel_err, stream

RATE = 48000
SIZES = [[1, 7, 64, 513], "random"]


def build(type_name: str, blocksize: int = 256, channels: int = 2, device="cpu", **args):
    return EFFECTS[type_name](**args).prepare(ProcessSpec(RATE, blocksize, channels, device))


def blocks(x: np.ndarray, sizes, seed: int = 0):
    """``x`` 1-D as float64 torch blocks following ``partition``."""
    start = 0
    for n in partition(x.shape[-1], sizes, seed):
        yield torch.from_numpy(x[start : start + n])
        start += n


def db(x) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.abs(x), 1e-12))


# -- kernels -------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("decay", [0.995, 0.3, 1e-5, 0.0])  # one scan in logs for any decay
def test_decaying_max_matches_the_loop(sizes, decay):
    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal(5000)) * (rng.random(5000) < 0.03)
    held, expected = 0.0, []
    for value in x:
        held = max(value, decay * held)
        expected.append(held)
    kernel = DecayingMax(1024, "cpu")
    kernel.set_decay(decay)
    got = np.concatenate([kernel.process(b).numpy().copy() for b in blocks(x, sizes)])
    assert np.max(np.abs(got - expected)) <= 1e-10


@pytest.mark.parametrize("sizes", SIZES)
def test_time_varying_one_pole_matches_the_loop(sizes):
    rng = np.random.default_rng(2)
    target = rng.standard_normal(5000)
    coef = np.where(rng.random(5000) < 0.5, 0.05, 0.9995)  # 0.05: chunks of ~200 samples
    y, expected = 0.3, []
    for t, c in zip(target, coef):
        y = c * y + (1 - c) * t
        expected.append(y)
    kernel = OnePole(1024, "cpu")
    kernel.reset(0.3)
    got = []
    for t, c in zip(blocks(target, sizes), blocks(coef, sizes)):
        got.append(kernel.process((1 - c) * t, c, 0.05).numpy().copy())
    assert np.max(np.abs(np.concatenate(got) - expected)) <= 1e-12


def test_fixed_chunks_match_the_loop():
    """Capture mode cuts every block the same way (``fix_chunks``): still the exact scan."""
    rng = np.random.default_rng(7)
    target = rng.standard_normal(4096)
    coef = np.where(rng.random(4096) < 0.5, 0.05, 0.9995)
    y, expected = 0.0, []
    for t, c in zip(target, coef):
        y = c * y + (1 - c) * t
        expected.append(y)
    kernel = OnePole(1024, "cpu")
    kernel.fix_chunks(0.05)  # chunks of ~200 frames in every 1024-frame block
    got = [kernel.process(torch.from_numpy((1 - c) * t), torch.from_numpy(c), 0.05).numpy().copy()
           for t, c in zip(target.reshape(4, 1024), coef.reshape(4, 1024))]
    assert np.max(np.abs(np.concatenate(got) - expected)) <= 1e-12


@pytest.mark.parametrize("coef", [0.999, 0.01])  # 0.01: chunks of ~130 samples
def test_smoother_matches_the_loop(coef):
    target = np.random.default_rng(6).standard_normal(3000)
    y, expected = -0.5, []
    for t in target:
        y = coef * y + (1 - coef) * t
        expected.append(y)
    kernel = Smoother(1024, "cpu")
    kernel.set_coefficient(coef)
    kernel.reset(-0.5)
    got = np.concatenate([kernel.process(b).numpy().copy() for b in blocks(target, "random")])
    assert np.max(np.abs(got - expected)) <= 1e-12


def test_latest_index_and_sliding_max():
    rng = np.random.default_rng(3)
    mask = rng.random(3000) < 0.01
    kernel, got, start = LatestIndex(1024, "cpu"), [], 0
    for n in partition(3000, "random", seed=4):  # indices come back relative to each block
        got.append(start + kernel.process(torch.from_numpy(mask[start : start + n])).numpy())
        start += n
    marks = np.where(mask, np.arange(3000), LatestIndex.NEVER)
    got = np.concatenate(got)
    np.testing.assert_array_equal(np.where(got < 0, LatestIndex.NEVER, got), np.maximum.accumulate(marks))
    x = torch.from_numpy(rng.standard_normal(300))
    out = torch.empty(300, dtype=torch.float64)
    expected = [x[i : i + 41].max() for i in range(260)]
    np.testing.assert_array_equal(sliding_max(x, 41, out[:260]).numpy(), expected)


def test_release_for_cascade_solves_its_equation():
    release, attack = 0.1, 0.01
    r = release_for_cascade(release, attack)
    remaining = (r * np.exp(-release / r) - attack * np.exp(-release / attack)) / (r - attack)
    assert remaining == pytest.approx(np.exp(-1), abs=1e-9)
    assert release_for_cascade(0.01, 0.02) < 1e-6  # no solution: the peak stage lets go at once


# -- compressor ----------------------------------------------------------------------------
def static_curve(level_db: float, threshold_db: float, ratio: float, knee_db: float) -> float:
    """Output level of the soft-knee curve, Giannoulis, Massberg & Reiss (2012), eq. 4."""
    over = level_db - threshold_db
    if 2 * over < -knee_db:
        return level_db
    if 2 * abs(over) <= knee_db and knee_db > 0:
        return level_db + (1 / ratio - 1) * (over + knee_db / 2) ** 2 / (2 * knee_db)
    return threshold_db + over / ratio


@pytest.mark.parametrize("threshold_db, ratio, knee_db", [(-20, 4, 6), (-30, 10, 0), (-10, 2, 12), (-40, 20, 24)])
def test_compressor_static_curve_at_steady_state(threshold_db, ratio, knee_db):
    """A rising staircase of DC levels, 30 ms each: the settled output level is the curve."""
    levels = np.arange(-60.0, 0.1, 2.5) + 0.3  # never exactly at a knee edge
    hold = int(0.03 * RATE)
    x = np.repeat(10 ** (levels / 20), hold)[None]
    comp = build("compressor", channels=1, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db,
                 attack_ms=1.0, release_ms=5.0, makeup_db=3.0)
    y = stream(comp.process, x, 256)
    settled = db(y[0, hold - 1 :: hold])
    expected = [static_curve(level, threshold_db, ratio, knee_db) + 3.0 for level in levels]
    np.testing.assert_allclose(settled, expected, atol=0.01)
    reduction = levels[-1] - expected[-1] + 3.0
    assert comp.gain_reduction_db.item() == pytest.approx(reduction, abs=0.01)


@pytest.mark.parametrize("attack_ms, release_ms", [(1.0, 50.0), (10.0, 100.0), (30.0, 300.0), (3.0, 1000.0)])
def test_compressor_attack_and_release_times(attack_ms, release_ms):
    """Time to 63% of a step in gain reduction (dB), up and down, within 10% of the setting."""
    quiet, loud = np.full(RATE // 10, 0.001), np.full(int(8 * attack_ms * 1e-3 * RATE) + 100, 1.0)
    x = np.concatenate([quiet, loud, np.full(int(6 * release_ms * 1e-3 * RATE), 0.001)])[None]
    comp = build("compressor", channels=1, threshold_db=-40, ratio=8, knee_db=0,
                 attack_ms=attack_ms, release_ms=release_ms)
    reduction = db(x[0]) - db(stream(comp.process, x, "random")[0])
    up, down = quiet.size, quiet.size + loud.size
    full = reduction[down - 1]
    assert full == pytest.approx(40 * (1 - 1 / 8), abs=0.05)
    attack = np.argmax(reduction[up:] >= (1 - np.exp(-1)) * full) / RATE * 1e3
    release = np.argmax(reduction[down:] <= np.exp(-1) * full) / RATE * 1e3
    assert attack == pytest.approx(attack_ms, rel=0.1)
    assert release == pytest.approx(release_ms, rel=0.1)


def test_compressor_sidechain_high_pass_ignores_bass():
    t = np.arange(RATE // 2) / RATE
    bass = 0.5 * np.sin(2 * np.pi * 50 * t)[None]
    plain = stream(build("compressor", channels=1).process, bass, 256)
    filtered = stream(build("compressor", channels=1, sidechain_hpf_hz=500.0).process, bass, 256)
    tail = slice(RATE // 4, None)
    assert db(plain[0, tail]).max() < -8  # 6 dB over a -20 dB threshold at 4:1
    assert db(filtered[0, tail]).max() > db(bass[0, tail]).max() - 1.5  # the 500 Hz HPF hides it


# -- limiter -------------------------------------------------------------------------------
def limiter_inputs() -> dict[str, np.ndarray]:
    t = np.arange(RATE // 2) / RATE
    square = np.sign(np.sin(2 * np.pi * 55 * t))
    impulses = np.zeros_like(t)
    impulses[100::4801] = 1.0
    noise = np.random.default_rng(5).uniform(-1, 1, t.size)
    bursts = np.sin(2 * np.pi * 1000 * t) * (np.sin(2 * np.pi * 3 * t) > 0.7)
    return {name: np.stack([x, -0.5 * x]) for name, x in
            {"square": square, "impulses": impulses, "noise": noise, "bursts": bursts}.items()}


@pytest.mark.parametrize("name", sorted(limiter_inputs()))
@pytest.mark.parametrize("input_gain_db, lookahead_ms", [(0.0, 5.0), (24.0, 1.0), (12.0, 0.1)])
def test_limiter_never_exceeds_the_ceiling(name, input_gain_db, lookahead_ms):
    """Any input, random block sizes: the output stays under the ceiling, and the gain
    computer (not the final clamp) does it."""
    x = limiter_inputs()[name]
    limiter = build("limiter", blocksize=1024, lookahead_ms=lookahead_ms, ceiling_db=-3.0,
                    input_gain_db=input_gain_db, release_ms=20.0)
    before_clamp = []
    apply = limiter._gain.process
    limiter._gain.process = lambda *args: before_clamp.append(float(apply(*args).abs().max())) or apply(*args)
    y = stream(limiter.process, x, "random", seed=7)
    assert limiter.gain_reduction_db.item() >= 0.0
    ceiling = 10 ** (-3 / 20)
    assert np.abs(y).max() <= ceiling * (1 + 1e-6)
    assert max(before_clamp) <= ceiling * (1 + 1e-5)


def test_limiter_delays_quiet_signals_unchanged():
    t = np.arange(RATE // 4) / RATE
    x = 0.5 * np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 440 * t)])
    limiter = build("limiter", lookahead_ms=2.0)
    lag = limiter.latency
    assert lag == round(0.002 * RATE)
    y = stream(limiter.process, x, [1, 7, 64, 200])
    np.testing.assert_allclose(y[:, lag:], x[:, :-lag], atol=1e-6)
    np.testing.assert_array_equal(y[:, :lag], 0.0)


def test_limiter_rejects_a_bad_lookahead_and_keeps_it_in_presets():
    with pytest.raises(ValueError, match="limiter: lookahead_ms = 50"):
        EFFECTS["limiter"](lookahead_ms=50)
    stage = EFFECTS["limiter"](lookahead_ms=2.5, ceiling_db=-2.0).to_stage()
    assert stage == {"type": "limiter", "lookahead_ms": 2.5, "ceiling_db": -2.0}


# -- gate ----------------------------------------------------------------------------------
def gate_gain(hold_ms: float, threshold_db=-40.0, hysteresis_db=10.0):
    """Gate gain (dB) on a DC level ramping -80 -> -20 -> -80 dB at 60 dB/s, and the level."""
    up = np.linspace(-80.0, -20.0, RATE)
    level = np.concatenate([up, up[::-1]])
    x = 10 ** (level / 20)[None]
    gate = build("gate", channels=1, threshold_db=threshold_db, hysteresis_db=hysteresis_db,
                 hold_ms=hold_ms, attack_ms=0.1, release_ms=5.0, range_db=-60.0)
    return db(stream(gate.process, x, "random")[0]) - level, level


@pytest.mark.parametrize("hold_ms", [0.0, 50.0])
def test_gate_opens_and_closes_at_its_thresholds(hold_ms):
    gain, level = gate_gain(hold_ms)
    assert np.all(gain[: RATE // 4] < -59.9)  # closed at first
    opened = np.argmax(gain > -59.0)
    assert level[opened] == pytest.approx(-40.0, abs=0.1)
    closing = RATE + np.argmax(gain[RATE:] < -1.0)
    hold = round(hold_ms * 1e-3 * RATE)
    assert level[closing - hold] == pytest.approx(-50.0, abs=0.1)  # threshold - hysteresis
    assert np.all(gain[opened + RATE // 100 : closing - 10] > -0.01)  # fully open in between
    assert gain[-1] < -59.9


@pytest.mark.parametrize("attack_ms, hold_ms, release_ms", [(1.0, 0.0, 50.0), (10.0, 30.0, 300.0)])
def test_gate_attack_hold_and_release_times(attack_ms, hold_ms, release_ms):
    """A loud DC burst: the gain (dB) goes 63% of the way open in ``attack_ms``, then after
    the burst stays open ``hold_ms`` and goes 63% of the way closed in ``release_ms``."""
    burst = int(8 * attack_ms * 1e-3 * RATE) + RATE // 20
    x = np.concatenate([np.full(RATE // 20, 1e-4), np.full(burst, 0.5), np.full(int(5 * release_ms * 1e-3 * RATE), 1e-4)])
    gate = build("gate", channels=1, threshold_db=-30.0, attack_ms=attack_ms, hold_ms=hold_ms,
                 release_ms=release_ms, range_db=-60.0)
    gain = db(stream(gate.process, x[None], "random")[0]) - db(x)
    start, stop = RATE // 20, RATE // 20 + burst
    opening = np.argmax(gain[start:] >= -60.0 * np.exp(-1)) / RATE * 1e3
    # The detector's 10 ms follower holds the level above the close threshold a while.
    below = stop + int(np.ceil(np.log(0.5 / 10 ** (-36 / 20)) * 0.01 * RATE))
    closing = np.argmax(gain[below:] <= -60.0 * (1 - np.exp(-1))) / RATE * 1e3
    assert opening == pytest.approx(attack_ms, rel=0.1)
    assert closing == pytest.approx(hold_ms + release_ms, rel=0.1)


def test_gate_hysteresis_keeps_its_state_between_the_thresholds():
    """A level between the thresholds leaves an open gate open and a closed gate closed."""
    middle = 10 ** (-45 / 20)
    loud_then_middle = np.concatenate([np.full(RATE // 10, 0.1), np.full(RATE // 2, middle)])[None]
    middle_only = np.full(RATE // 2, middle)[None]
    gate = dict(channels=1, threshold_db=-40.0, hysteresis_db=10.0, hold_ms=0.0)
    y = stream(build("gate", **gate).process, loud_then_middle, 256)
    assert db(y[0, -1]) == pytest.approx(-45.0, abs=0.01)
    y = stream(build("gate", **gate).process, middle_only, 256)
    assert db(y[0, -1]) == pytest.approx(-105.0, abs=0.01)


# -- de-esser ------------------------------------------------------------------------------
def test_deesser_turns_down_sibilance_not_the_voice():
    t = np.arange(RATE // 2) / RATE
    fade = np.minimum(t / 0.005, 1)
    reduction = {}
    for freq in (500.0, 7000.0):
        x = 0.3 * fade * np.stack([np.sin(2 * np.pi * freq * t)] * 2)
        y = stream(build("deesser", frequency_hz=4000.0, threshold_db=-30.0, range_db=12.0).process, x, 256)
        tail = slice(RATE // 4, None)
        reduction[freq] = db(np.sqrt(np.mean(x[:, tail] ** 2))) - db(np.sqrt(np.mean(y[:, tail] ** 2)))
    assert reduction[7000.0] > 8.0
    assert abs(reduction[500.0]) < 0.2


# -- every dynamics effect -----------------------------------------------------------------
CASES = {
    "compressor": dict(threshold_db=-30.0, ratio=6.0, knee_db=3.0, attack_ms=2.0, release_ms=40.0,
                       makeup_db=6.0, sidechain_hpf_hz=120.0),
    "limiter": dict(lookahead_ms=3.0, ceiling_db=-6.0, input_gain_db=12.0, release_ms=30.0),
    "gate": dict(threshold_db=-25.0, hysteresis_db=6.0, hold_ms=10.0, attack_ms=0.5, release_ms=20.0),
    "deesser": dict(frequency_hz=3000.0, threshold_db=-40.0, range_db=18.0),
}


def program(seconds: float = 0.6) -> np.ndarray:
    """Bursts of a chord with noise, loud and quiet: every detector opens and closes."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(9)
    envelope = np.where(np.sin(2 * np.pi * 4 * t) > 0, 0.8, 0.01)
    tone = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 5000.0)) / 3
    x = envelope * (tone + 0.2 * rng.standard_normal(t.size))
    return np.stack([x, np.roll(x, 51)])


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_same_output_for_any_block_partition(type_name):
    x = program()
    reference = stream(build(type_name, **CASES[type_name]).process, x, 256)
    for sizes in SIZES:
        assert rel_err(stream(build(type_name, **CASES[type_name]).process, x, sizes, seed=11), reference) <= 1e-5


@pytest.mark.parametrize("type_name", sorted(CASES))
@pytest.mark.parametrize("device", DEVICES)
def test_device_matches_cpu(type_name, device):
    """On each device, the output matches the CPU output (and the effect is a dynamics one)."""
    assert EFFECTS[type_name].category == "dynamics"
    x = program(0.3)
    cpu = stream(build(type_name, **CASES[type_name]).process, x, 256)
    got = stream(build(type_name, device=device, **CASES[type_name]).process, x, 256, device=device)
    assert rel_err(got, cpu) <= 1e-5


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_empty_blocks_change_nothing(type_name):
    x = program(0.1)
    reference = stream(build(type_name, **CASES[type_name]).process, x, 256)
    effect = build(type_name, **CASES[type_name])

    def process(block):
        assert effect.process(block[:, :0]).shape == (2, 0)
        return effect.process(block)

    assert rel_err(stream(process, x, 256), reference) == 0.0


def test_gain_reduction_meters():
    """Every dynamics effect exposes the reduction (dB) at the end of the last block."""
    loud, silence = np.full((1, 4800), 1.0), np.zeros((1, 4800))
    expected = {"limiter": (loud, 6.0), "gate": (silence, 60.0), "compressor": (loud, 15.0),
                "deesser": (silence, 0.0)}
    args = {"limiter": dict(ceiling_db=-6.0), "gate": dict(range_db=-60.0), "compressor": dict(knee_db=0.0),
            "deesser": {}}
    for type_name, (x, reduction) in expected.items():
        effect = build(type_name, channels=1, **args[type_name])
        stream(effect.process, x, 256)
        assert effect.gain_reduction_db.item() == pytest.approx(reduction, abs=1e-3), type_name


@pytest.mark.parametrize("type_name", sorted(CASES))
@pytest.mark.parametrize("rate, channels", [(8000, 1), (44100, 3), (96000, 2)])
def test_any_rate_and_channel_count_streams_the_same(type_name, rate, channels):
    x = np.resize(program(0.2), (channels, int(0.2 * rate)))

    def fresh():
        return EFFECTS[type_name](**CASES[type_name]).prepare(ProcessSpec(rate, 256, channels))

    reference = stream(fresh().process, x, 256)
    assert np.all(np.isfinite(reference))
    assert rel_err(stream(fresh().process, x, "random", seed=2), reference) <= 1e-5
