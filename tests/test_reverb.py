"""Reverbs: FDN decay time, damping, stability, pre-delay, width; convolution reverb exactness."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from rtfx import ProcessSpec
from rtfx.effects.reverb import IR_DIR, ConvolutionReverb, FDNReverb
from rtfx.kernels.predelay import PreDelay

from conftest import DEVICES, allocations, rel_err, stream

RATE = 48000


def impulse_response(effect, seconds: float, channels: int = 2, device="cpu", sizes=256) -> np.ndarray:
    """The streamed response ``(channels, frames)`` of ``effect`` to a unit impulse."""
    x = np.zeros((channels, int(seconds * RATE)))
    x[:, 0] = 1.0
    return stream(effect.process, x, sizes, device=device)


def fdn(device="cpu", channels: int = 2, blocksize: int = 256, **values) -> FDNReverb:
    values = {"mix": 1.0, "predelay_ms": 0.0, **values}
    return FDNReverb(**values).prepare(ProcessSpec(RATE, blocksize, channels, device))


def rt60(h: np.ndarray, top_db: float = -5.0, bottom_db: float = -35.0) -> float:
    """RT60 in seconds by Schroeder backward integration, a line fitted from -5 to -35 dB."""
    energy = np.sum(np.atleast_2d(h) ** 2, axis=0)[::-1].cumsum()[::-1]
    level = 10 * np.log10(energy / energy[0])
    fit = (level <= top_db) & (level >= bottom_db)
    slope, _ = np.polyfit(np.flatnonzero(fit) / RATE, level[fit], 1)
    return -60.0 / slope


def octave_band(h: np.ndarray, centre_hz: float) -> np.ndarray:
    sos = scipy.signal.butter(4, [centre_hz / np.sqrt(2), centre_hz * np.sqrt(2)], "bandpass", fs=RATE, output="sos")
    return scipy.signal.sosfilt(sos, h, axis=-1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("decay_s, size", [(0.5, 1.0), (1.5, 0.4), (3.0, 1.8)])
def test_fdn_decays_at_the_set_rt60(decay_s, size, device):
    h = impulse_response(fdn(device, decay_s=decay_s, size=size, damping=0.0), 1.2 * decay_s + 0.2, device=device)
    assert rt60(h) == pytest.approx(decay_s, rel=0.1)


def test_damping_makes_high_frequencies_decay_faster():
    times = {}
    for damping in (0.0, 0.8):
        h = impulse_response(fdn(decay_s=1.5, damping=damping), 2.0)
        times[damping] = [rt60(octave_band(h, f)) for f in (250.0, 8000.0)]
    low, high = times[0.8]
    assert low == pytest.approx(1.5, rel=0.1)
    assert high < 0.5 * low
    assert times[0.0][1] == pytest.approx(times[0.0][0], rel=0.1)  # undamped: bands decay alike


def test_longest_decay_loses_energy_steadily_and_never_grows():
    effect = fdn(decay_s=20.0, damping=0.0)
    noise = np.random.default_rng(1).standard_normal((2, RATE // 4))
    x = np.concatenate([noise, np.zeros((2, 4 * RATE))], axis=-1)
    y = stream(effect.process, x, 512)[:, RATE // 2 :]
    window = RATE // 2
    energy_db = 10 * np.log10([np.sum(y[:, i : i + window] ** 2) for i in range(0, y.shape[-1] - window + 1, window)])
    assert np.all(np.diff(energy_db) < 0.5)
    drop_per_s = (energy_db[0] - energy_db[-1]) / ((len(energy_db) - 1) * window / RATE)
    assert drop_per_s == pytest.approx(3.0, rel=0.15)  # 60 dB in 20 s


@pytest.mark.parametrize("cls", [FDNReverb, ConvolutionReverb])
@pytest.mark.parametrize("predelay_ms", [1.0, 37.5, 250.0])
def test_predelay_delays_the_wet_signal_exactly(cls, predelay_ms):
    args = {"file": IR_DIR / "room.wav"} if cls is ConvolutionReverb else {}
    x = np.random.default_rng(2).standard_normal((2, RATE // 2)) * 0.3
    spec = ProcessSpec(RATE, 128, 2)
    undelayed = stream(cls(**args, mix=1.0, predelay_ms=0.0).prepare(spec).process, x, "random")
    delayed = stream(cls(**args, mix=1.0, predelay_ms=predelay_ms).prepare(spec).process, x, "random")
    shift = round(predelay_ms * RATE / 1000)
    assert np.all(delayed[:, :shift] == 0)
    # float32 partitions meet the input at other offsets: ~1e-6 of rounding (a sample off: ~1)
    assert rel_err(delayed[:, shift:], undelayed[:, :-shift]) <= 3e-6


def test_predelay_change_crossfades_between_the_two_delays():
    delay = PreDelay(channels=2, max_delay=100, max_block=64, fade=40, device="cpu")
    delay.set_delay(10)
    x = np.random.default_rng(7).standard_normal((2, 400))
    first = stream(delay.process, x[:, :200], 64)
    delay.set_delay(50)
    second = stream(delay.process, x[:, 200:], [7, 64])
    y, t = np.concatenate([first, second], axis=-1), np.arange(200, 400)
    weight = np.minimum((t - 199) / 40, 1.0)
    expected = (1 - weight) * x[:, t - 10] + weight * x[:, t - 50]
    np.testing.assert_allclose(y[:, 200:], expected, atol=1e-6)
    np.testing.assert_array_equal(y[:, 10:200], x[:, :190].astype(np.float32))


def correlation(h: np.ndarray) -> float:
    return float(np.corrcoef(h)[0, 1])


def test_width_decorrelates_the_outputs():
    h = {width: impulse_response(fdn(width=width), 1.0) for width in (0.0, 0.5, 1.0)}
    assert abs(correlation(h[1.0])) < 0.2
    assert correlation(h[0.0]) > 0.9999
    assert abs(correlation(h[1.0])) < correlation(h[0.5]) < correlation(h[0.0])


@pytest.mark.parametrize("lines", [8, 16])
def test_any_block_partition_gives_the_same_tail(lines):
    x = np.random.default_rng(3).standard_normal((2, RATE // 2)) * 0.3
    build = lambda: FDNReverb(lines=lines, size=0.25, predelay_ms=3.0).prepare(ProcessSpec(RATE, 600, 2))
    reference = stream(build().process, x, 600)
    for sizes in ([1, 7, 64, 200], "random"):
        assert rel_err(stream(build().process, x, sizes, seed=4), reference) <= 1e-5


def test_line_lengths_are_whole_samples_at_rest():
    effect = fdn(size=0.7, predelay_ms=2.0)
    shortest = round(effect._base.min() * 0.7)
    h = impulse_response(effect, 0.1)
    assert np.flatnonzero(np.any(h != 0, axis=0))[0] == shortest + round(2.0 * RATE / 1000)


def test_line_lengths_settle_on_whole_samples_after_a_size_change():
    effect = fdn(size=1.0)
    effect.set("size", 0.5)
    stream(effect.process, np.zeros((2, RATE)), 256)  # the ramp ends, the lines stay silent
    h = impulse_response(effect, 0.1, sizes=[5, 64, 256])
    assert np.flatnonzero(np.any(h != 0, axis=0))[0] == round(effect._base.min() * 0.5)


def test_size_change_glides_without_blowing_up():
    effect = fdn(decay_s=5.0)
    x = np.random.default_rng(4).standard_normal((2, RATE)) * 0.2
    first = stream(effect.process, x[:, : RATE // 2], 256)
    effect.set("size", 0.25)
    second = stream(effect.process, x[:, RATE // 2 :], 256)
    y = np.concatenate([first, second], axis=-1)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) < 10 * np.max(np.abs(first))


@pytest.mark.parametrize("channels", [1, 3])
def test_fdn_runs_on_any_channel_count(channels):
    h = impulse_response(fdn(channels=channels), 0.3, channels=channels)
    assert np.all(np.isfinite(h)) and np.all(np.sum(h**2, axis=-1) > 0.01)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("blocksize", [64, 256])
@pytest.mark.parametrize("values", [
    {"predelay_ms": 0.0},
    {"predelay_ms": 12.3, "low_cut_hz": 200.0, "high_cut_hz": 5000.0, "gain_db": -3.0},
])
def test_convolution_reverb_equals_oaconvolve_of_the_ir(values, blocksize, device):
    effect = ConvolutionReverb(file=IR_DIR / "hall.wav", mix=1.0, **values)
    effect.prepare(ProcessSpec(RATE, blocksize, 2, device))
    x = np.random.default_rng(5).standard_normal((2, RATE // 2)) * 0.3
    y = stream(effect.process, x, "random", device=device, seed=6)
    shift = round(effect.get("predelay_ms") * RATE / 1000)
    delayed = np.concatenate([np.zeros((2, shift)), x[:, : x.shape[-1] - shift]], axis=-1)
    ir = effect.impulse_response(RATE)
    wet = np.stack([scipy.signal.oaconvolve(delayed[c], ir[c])[: x.shape[-1]] for c in range(2)])
    reference = 10 ** (effect.get("gain_db") / 20) * scipy.signal.sosfilt(effect.cuts(), wet, axis=-1)
    assert rel_err(y, reference) <= 1e-5


@pytest.mark.parametrize("capture", [False, True])
def test_the_cuts_reach_their_set_value_when_a_ramp_ends_at_a_block_start(capture):
    """The cut's ramp (1440 frames at 48 kHz) ends in the first 4-frame step of the fourth
    359-frame block: that block's stepped values hold still, yet the filter must move."""
    effect = ConvolutionReverb(file=IR_DIR / "room.wav", mix=1.0)
    effect.prepare(ProcessSpec(RATE, 512, 2, capture=capture))
    assert effect._smoothed["low_cut_hz"]._ramp_frames == 4 * 359 + 4
    effect.set("low_cut_hz", 300.0)
    for _ in range(6):
        effect.process(torch.zeros(2, 359))
    assert effect.value("low_cut_hz") == 300.0
    np.testing.assert_array_equal(effect._cut.sos, effect.cuts())


def test_convolution_reverb_on_a_mono_stream_uses_the_left_ir_channel():
    effect = ConvolutionReverb(file=IR_DIR / "room.wav", mix=1.0, predelay_ms=0.0, low_cut_hz=20.0)
    effect.prepare(ProcessSpec(RATE, 128, 1))
    stereo = ConvolutionReverb(file=IR_DIR / "room.wav").impulse_response(RATE)
    np.testing.assert_array_equal(effect.impulse_response(RATE), stereo[:1])


def test_reverbs_default_to_a_partial_mix_and_check_their_fields():
    assert FDNReverb().get("mix") == ConvolutionReverb(file=IR_DIR / "room.wav").get("mix") == 0.25
    assert FDNReverb(lines=16).to_stage() == {"type": "fdn_reverb", "lines": 16}  # the default mix is not written
    with pytest.raises(ValueError, match="fdn_reverb: lines = 12"):
        FDNReverb(lines=12)
    for normalize in (True, False):
        stage = ConvolutionReverb(file=IR_DIR / "room.wav", normalize=normalize).to_stage()
        assert stage.get("normalize", True) is normalize


def test_fdn_allocates_nothing_while_playing_or_while_every_parameter_moves():
    effect = fdn(blocksize=256)
    blocks = [torch.randn(2, n) * 0.1 for n in (256, 7, 64, 200, 1, 128)]
    for x in blocks:
        effect.process(x)
    assert allocations(effect, blocks) == []
    for name, value in {"size": 0.5, "decay_s": 5.0, "damping": 0.9, "predelay_ms": 40.0, "width": 0.3}.items():
        effect.set(name, value)
    assert allocations(effect, blocks * 3) == []
