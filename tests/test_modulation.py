"""Chorus, flanger, vibrato, tremolo and phaser against per-sample numpy references that use
the same LFO, the same interpolation and the same control-rate alignment."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

import rtfx
from rtfx import ProcessSpec
from rtfx.effects.modulation import Chorus, Flanger, Tremolo, Vibrato
from rtfx.effects.phaser import CONTROL_STEP, Phaser
from rtfx.kernels.allpass import allpass_coefficient
from rtfx.kernels.delayline import COEFFS
from rtfx.kernels.lfo import Lfo, lfo_values

from conftest import DEVICES, allocations, rel_err, stream
from test_delay import interpolate

RATE = 48000
PARTITIONS = (256, [1, 7, 64, 200], "random")


def signal(frames: int = 4000, seed: int = 0) -> np.ndarray:
    """Two channels: a chord plus noise, peak around 0.5."""
    t = np.arange(frames) / RATE
    rng = np.random.default_rng(seed)
    x = sum(0.1 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate((220.0, 330.0, 1250.0)))
    return np.stack([x, np.roll(x, 11)]) + 0.05 * rng.standard_normal((2, frames))


def lfo_grid(shape, rate_hz, stereo_deg, frames, voices=1, times=None):
    """u[c, v, n] at sample times ``times`` (default 0..frames-1)."""
    times = np.arange(frames) if times is None else times
    phase = rate_hz * times / RATE + np.arange(2)[:, None, None] * stereo_deg / 360 + (np.arange(voices) / voices)[:, None]
    return lfo_values(shape, phase)


def check_partitions(effect_factory, x, ref, device, tolerance=1e-5):
    for sizes in PARTITIONS:
        effect = effect_factory().prepare(ProcessSpec(RATE, 256, 2, device))
        assert rel_err(stream(effect.process, x, sizes, device=device, seed=5), ref) <= tolerance, sizes


@pytest.mark.parametrize("shape", ["sine", "triangle"])
def test_lfo_phase_follows_absolute_time(shape):
    lfo = Lfo(shape, 2, 3, 64)
    values, start = [], 0
    for n in (5, 64, 1, 30, 64):
        values.append(lfo.values(n, 3.7 / RATE, 0.25).numpy().copy())
        lfo.advance(n, 3.7 / RATE)
        start += n
    got = np.concatenate(values, axis=-1)
    np.testing.assert_allclose(got, lfo_grid(shape, 3.7, 90.0, start, voices=3), atol=1e-12)
    assert lfo_values(shape, np.array([0.0, 0.5])).tolist() == [0.0, 1.0]


def modulated_delay_reference(x, kind, delay_ms, depth_ms, u, feedback=0.0):
    """wet[c, n] = mean over voices of line_c(n - delay), line = x + feedback * wet."""
    channels, voices, frames = u.shape
    reach = len(COEFFS[kind]) // 2
    delays = reach + (delay_ms + depth_ms * u) * RATE / 1000
    line, wet = x.copy(), np.zeros_like(x)
    for c in range(channels):
        for n in range(frames):
            wet[c, n] = np.mean([interpolate(line[c], n - delays[c, v, n], kind) for v in range(voices)])
            line[c, n] = x[c, n] + feedback * wet[c, n]
    return wet


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind, shape, voices", [("hermite", "sine", 3), ("lagrange", "triangle", 2), ("linear", "sine", 1)])
def test_chorus_matches_the_per_sample_reference(device, kind, shape, voices):
    x = signal()
    settings = dict(rate_hz=2.5, depth_ms=4.0, delay_ms=6.0, stereo_phase_deg=60.0)
    u = lfo_grid(shape, 2.5, 60.0, x.shape[-1], voices)
    wet = modulated_delay_reference(x, kind, 6.0, 4.0, u)
    factory = lambda: Chorus(voices=voices, shape=shape, interpolation=kind, mix=0.3, **settings)  # noqa: E731
    check_partitions(factory, x, 0.7 * x + 0.3 * wet, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("feedback", [0.7, -0.85])
def test_flanger_with_feedback_matches_the_per_sample_reference(device, feedback):
    x = signal()
    u = lfo_grid("triangle", 3.0, 90.0, x.shape[-1])
    wet = modulated_delay_reference(x, "hermite", 1.0, 3.0, u, feedback)
    factory = lambda: Flanger(rate_hz=3.0, depth_ms=3.0, delay_ms=1.0, feedback=feedback, mix=1.0)  # noqa: E731
    check_partitions(factory, x, wet, device)


@pytest.mark.parametrize("device", DEVICES)
def test_vibrato_is_wet_only_pitch_modulation(device):
    x = signal()
    u = lfo_grid("sine", 6.0, 0.0, x.shape[-1])
    wet = modulated_delay_reference(x, "hermite", 0.0, 2.0, u)
    check_partitions(lambda: Vibrato(rate_hz=6.0, depth_ms=2.0), x, wet, device)
    assert Vibrato().get("mix") == 1.0
    # a sine comes out with its frequency swinging by depth * pi * rate (the delay's slope)
    t = np.arange(RATE) / RATE
    tone = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2)
    y = stream(Vibrato(rate_hz=6.0, depth_ms=2.0).prepare(ProcessSpec(RATE, 256, 2)).process, tone, 256)
    crossings = np.flatnonzero(np.diff(np.signbit(y[0, 2000:])))
    periods = np.diff(crossings) * 2 / RATE
    swing = 2e-3 * math.pi * 6.0
    assert 1 / periods.max() == pytest.approx(1000 * (1 - swing), rel=0.01)
    assert 1 / periods.min() == pytest.approx(1000 * (1 + swing), rel=0.01)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ["sine", "triangle"])
def test_tremolo_matches_the_reference_and_pans_with_stereo_phase(device, shape):
    x = signal()
    u = lfo_grid(shape, 7.0, 180.0, x.shape[-1])[:, 0]
    check_partitions(lambda: Tremolo(shape=shape, rate_hz=7.0, depth=0.8, stereo_phase_deg=180.0),
                     x, x * (1 - 0.8 * u), device)
    assert np.allclose(u[0] + u[1], 1.0)  # 180 degrees apart: one side dips as the other peaks


def phaser_reference(x, stages, low_hz, high_hz, rate_hz, feedback, stereo_deg, shape="sine"):
    """The all-pass chain one sample at a time; ``a`` from the LFO at each multiple of the step."""
    channels, frames = x.shape
    boundaries = np.arange(0, frames, CONTROL_STEP)
    u = lfo_grid(shape, rate_hz, stereo_deg, 0, times=boundaries)[:, 0]
    a = allpass_coefficient(low_hz * (high_hz / low_hz) ** u, RATE)
    z, p, y = np.zeros((channels, stages)), np.zeros(channels), np.zeros_like(x)
    for n in range(frames):
        coefficient, v = a[:, n // CONTROL_STEP], x[:, n] + feedback * p
        for k in range(stages):
            out = coefficient * v + z[:, k]
            z[:, k] = v - coefficient * out
            v = out
        p = y[:, n] = v
    return y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("stages, feedback, shape", [(4, 0.6, "sine"), (7, -0.8, "triangle"), (12, 0.0, "sine")])
def test_phaser_matches_the_per_sample_reference(device, stages, feedback, shape):
    x = signal()
    wet = phaser_reference(x, stages, 150.0, 6000.0, 9.0, feedback, 90.0, shape)
    factory = lambda: Phaser(stages=stages, shape=shape, rate_hz=9.0, low_hz=150.0, high_hz=6000.0,  # noqa: E731
                             feedback=feedback, mix=0.5)
    # Twelve stages on a GPU, against float64: 1.12e-5 on an H100 (float32 sums in another order).
    check_partitions(factory, x, 0.5 * (x + wet), device, tolerance=1e-5 if device == "cpu" else 2e-5)


@pytest.mark.parametrize("stages", [2, 4, 6])
def test_phaser_notches_for_a_frozen_lfo(stages):
    fc = 1000.0
    effect = Phaser(stages=stages, low_hz=fc, high_hz=fc, feedback=0.0).prepare(ProcessSpec(RATE, 256, 1))
    impulse = np.zeros((1, 8192))
    impulse[0, 0] = 1.0
    response = np.fft.rfft(stream(effect.process, impulse, 256)[0])
    freqs = np.fft.rfftfreq(8192, 1 / RATE)
    a = allpass_coefficient(fc, RATE)
    b_chain = np.poly1d([a, 1.0]) ** stages
    a_chain = np.poly1d([1.0, a]) ** stages
    _, chain = scipy.signal.freqz(b_chain.coeffs, a_chain.coeffs, worN=freqs, fs=RATE)
    np.testing.assert_allclose(response, 0.5 * (1 + chain), atol=1e-5)
    notches = [RATE / math.pi * math.atan(math.tan(math.pi * fc / RATE) * math.tan((2 * m + 1) * math.pi / (2 * stages)))
               for m in range(stages // 2)]
    _, at_notches = scipy.signal.freqz(b_chain.coeffs, a_chain.coeffs, worN=notches, fs=RATE)
    np.testing.assert_allclose(np.abs(0.5 * (1 + at_notches)), 0.0, atol=1e-9)
    for f in notches:  # the measured response dips there (bin spacing 5.9 Hz)
        near = np.abs(freqs - f) < 30
        assert np.abs(response[near]).min() < 0.02, f
    assert stages // 2 == len(notches)


@pytest.mark.parametrize("cls, kwargs, match", [
    (Chorus, {"voices": 5}, "chorus: voices = 5"),
    (Chorus, {"voices": 2.0}, "chorus: voices = 2.0"),
    (Chorus, {"shape": "square"}, "chorus: shape = 'square'"),
    (Flanger, {"interpolation": "sinc"}, "flanger: interpolation = 'sinc'"),
    (Tremolo, {"shape": "saw"}, "tremolo: shape = 'saw'"),
    (Phaser, {"stages": 13}, "phaser: stages = 13"),
])
def test_bad_construction_fields_name_the_effect(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_flanger_feedback_loop_runs_in_sub_blocks_shorter_than_the_block():
    """A 1 ms (48-sample) loop inside 256-frame blocks equals one-sample blocks."""
    x = signal(1000)
    make = lambda: Flanger(delay_ms=1.0, depth_ms=0.0, feedback=0.9, mix=1.0).prepare(ProcessSpec(RATE, 256, 2))  # noqa: E731
    assert rel_err(stream(make().process, x, 256), stream(make().process, x, 1)) <= 1e-6
    assert torch.get_num_threads() >= 1


def test_presets_round_trip_fields_and_parameters():
    from rtfx.effects.delay import Delay

    chain = rtfx.Chain(
        Delay(note="1/8d", ping_pong=True, bpm=96.0, feedback=0.6),
        Chorus(voices=3, shape="triangle", interpolation="lagrange", depth_ms=2.0),
        Flanger(shape="sine", feedback=-0.5),
        Vibrato(interpolation="linear", rate_hz=6.5),
        Tremolo(shape="triangle", depth=0.9, stereo_phase_deg=180.0),
        Phaser(stages=8, shape="triangle", low_hz=300.0),
    )
    data = rtfx.preset_dict(chain)
    assert data["chain"][0] == {"type": "delay", "note": "1/8d", "ping_pong": True, "bpm": 96.0,
                                "feedback": 0.6}  # mix at its default (0.35) is not written
    again = rtfx.chain_from_preset(data)
    assert rtfx.preset_dict(again) == data
    x = signal(3000)
    spec = ProcessSpec(RATE, 256, 2)
    chain.prepare(spec)
    again.prepare(spec)
    assert rel_err(stream(again.process, x, 256), stream(chain.process, x, 256)) == 0.0


@pytest.mark.parametrize("samplerate, channels", [(8000, 1), (22050, 3), (44100, 2), (96000, 2)])
@pytest.mark.parametrize("type_name", ["delay", "chorus", "flanger", "vibrato", "tremolo", "phaser"])
def test_any_rate_and_channel_count_streams_the_same_in_any_partition(type_name, samplerate, channels):
    cls = rtfx.EFFECTS[type_name]
    top = {"high_cut_hz": 20000.0, "high_hz": 16000.0}  # above 0.45 fs at low rates: capped
    make = lambda: cls(**cls.example_args, **{k: v for k, v in top.items() if any(p.name == k for p in cls.params)},  # noqa: E731
                       ).prepare(ProcessSpec(samplerate, 256, channels))
    x = np.resize(signal(3000), (channels, 3000))
    reference = stream(make().process, x, 256)
    assert np.all(np.isfinite(reference)) and np.abs(reference).max() < 10
    assert rel_err(stream(make().process, x, "random", seed=4), reference) <= 1e-5


@pytest.mark.parametrize("type_name", ["delay", "chorus", "flanger", "vibrato", "tremolo", "phaser"])
def test_process_allocates_no_tensors_after_warm_up(type_name):
    """Steady blocks of 256, 128, 64 and 16 frames, then the same while every parameter ramps."""

    cls = rtfx.EFFECTS[type_name]
    effect = cls(**cls.example_args).prepare(ProcessSpec(RATE, 256, 2))
    blocks = [torch.randn(2, n) for n in (256, 128, 64, 16)]
    for x in blocks:
        effect.process(x)
    assert allocations(effect, blocks) == []
    for param in cls.params:
        effect.set(param.name, 0.5 * (param.minimum + param.maximum))
    assert allocations(effect, blocks) == []
