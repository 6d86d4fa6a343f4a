"""Parametric and tilt EQ: streamed response against the designed sections, bands, presets."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from rtfx import ProcessSpec
from rtfx.effects.eq import GRAPHIC_BANDS_HZ, GraphicEQ, ParametricEQ, TiltEQ, design_pass
from rtfx.preset import chain_from_preset

from conftest import DEVICES, stream

RATE = 48000
BANDS = [{"kind": "highpass", "slope_db": 18}, "lowshelf", "peaking", "notch", "peaking",
         "bandpass", "highshelf", {"kind": "lowpass", "slope_db": 48}]
SETTINGS = {
    "b1_freq_hz": 30.0, "b2_freq_hz": 120.0, "b2_gain_db": 4.0, "b3_gain_db": -9.0, "b3_q": 3.0,
    "b4_freq_hz": 3000.0, "b4_q": 8.0, "b5_gain_db": 12.0, "b5_q": 0.4, "b6_q": 0.2,
    "b7_gain_db": -6.0, "b8_freq_hz": 16000.0, "b8_q": 1.2,
}
TOLERANCE_DB = 0.01


def streamed_response_db(effect, device, frames: int = 1 << 16):
    """Magnitude (dB) of the streamed impulse response of ``effect`` (random block sizes)."""
    impulse = np.zeros((2, frames))
    impulse[:, 0] = 1.0
    h = stream(effect.process, impulse, "random", device=device, seed=5)
    return 20 * np.log10(np.abs(np.fft.rfft(h, axis=-1)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls, bands, values", [
    (ParametricEQ, BANDS, SETTINGS),
    (ParametricEQ, ["peaking"], {"b1_gain_db": -24.0, "b1_q": 18.0, "b1_freq_hz": 100.0}),
    (TiltEQ, None, {"tilt_db": -7.5, "pivot_hz": 300.0}),
    (GraphicEQ, None, {"gain_31hz_db": 6.0, "gain_1khz_db": -12.0, "gain_2khz_db": 12.0, "gain_16khz_db": -3.0}),
])
def test_streamed_magnitude_matches_the_designed_sections(cls, bands, values, device):
    args = {} if bands is None else {"bands": bands}
    effect = cls(**args, **values).prepare(ProcessSpec(RATE, 256, 2, device))
    measured = streamed_response_db(effect, device)
    freqs = np.fft.rfftfreq(1 << 16, 1 / RATE)
    _, h = scipy.signal.sosfreqz(effect.sections, freqs, fs=RATE)
    expected = 20 * np.log10(np.maximum(np.abs(h), 1e-12))
    in_band = expected > expected.max() - 30  # skip stop bands and the notch's floor
    assert in_band.mean() > 0.5
    assert np.max(np.abs(measured[:, in_band] - expected[in_band])) <= TOLERANCE_DB


@pytest.mark.parametrize("slope", [6, 12, 18, 24, 36, 48])
@pytest.mark.parametrize("kind", ["highpass", "lowpass"])
def test_passes_are_butterworth_of_slope_over_6(kind, slope):
    sos = design_pass(kind, slope, 1234.0, RATE, 1 / np.sqrt(2))[0]
    reference = scipy.signal.butter(slope // 6, 1234.0, kind, fs=RATE, output="sos")
    assert sos.shape[0] == reference.shape[0]
    _, h = scipy.signal.sosfreqz(sos, 512, fs=RATE)
    _, h_ref = scipy.signal.sosfreqz(reference, 512, fs=RATE)
    np.testing.assert_allclose(h, h_ref, atol=1e-12)


def test_pass_q_makes_a_resonant_corner():
    flat = design_pass("lowpass", 24, 1000.0, RATE, 1 / np.sqrt(2))[0]
    resonant = design_pass("lowpass", 24, 1000.0, RATE, 4.0)[0]
    gain = [abs(scipy.signal.sosfreqz(s, [1000.0], fs=RATE)[1][0]) for s in (flat, resonant)]
    assert gain[0] == pytest.approx(np.sqrt(0.5), rel=1e-9)  # -3.01 dB at the corner
    assert gain[1] > 2.0


def test_tilt_is_half_the_tilt_at_each_end_and_flat_at_the_pivot():
    effect = TiltEQ(tilt_db=10.0, pivot_hz=500.0).prepare(ProcessSpec(RATE, 64, 1))
    _, h = scipy.signal.sosfreqz(effect.sections, [0.0, 500.0, RATE / 2], fs=RATE)
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), [-5.0, 0.0, 5.0], atol=1e-9)


def test_params_are_those_of_the_bands_in_use():
    effect = ParametricEQ(bands=["lowshelf", {"kind": "highpass", "slope_db": 24}], b2_freq_hz=90.0)
    assert [p.name for p in effect.params] == [
        "b1_freq_hz", "b1_gain_db", "b1_q", "b2_freq_hz", "b2_gain_db", "b2_q"]
    assert set(effect.values) == {p.name for p in effect.params} | {"mix"}
    with pytest.raises(ValueError, match="parametric_eq: unknown parameter 'b3_freq_hz'"):
        effect.set("b3_freq_hz", 1000.0)
    assert len(ParametricEQ.params) == 24  # the class declares all eight bands (presets, schema)


def test_preset_round_trip_keeps_bands_and_values():
    effect = ParametricEQ(bands=BANDS, **SETTINGS)
    stage = effect.to_stage()
    assert stage["bands"][0] == {"kind": "highpass", "slope_db": 18} and stage["bands"][1] == "lowshelf"
    copy = chain_from_preset({"chain": [stage]}).stages[0]
    assert copy.bands == effect.bands and copy.values == effect.values
    spec = ProcessSpec(RATE, 128, 2)
    np.testing.assert_array_equal(copy.prepare(spec).sections, effect.prepare(spec).sections)


@pytest.mark.parametrize("bands, message", [
    ([], "bands has 0 entries"),
    (["peaking"] * 9, "bands has 9 entries"),
    (["peak"], "band 1: kind = 'peak'"),
    (["peaking", {"kind": "highpass", "slope_db": 30}], "band 2: slope_db = 30"),
    ([{"kind": "peaking", "slope_db": 24}], "band 1: slope_db = 24"),
    ([{"kind": "lowpass", "order": 2}], "band 1 must be a kind or an object"),
])
def test_bad_bands_name_the_effect_and_the_band(bands, message):
    with pytest.raises(ValueError, match=f"parametric_eq: {message}"):
        ParametricEQ(bands=bands)


def test_section_count_is_fixed_while_parameters_ramp():
    effect = ParametricEQ(bands=BANDS).prepare(ProcessSpec(RATE, 256, 2))
    count = effect.sections.shape[0]
    x = np.random.default_rng(0).standard_normal((2, RATE // 4)) * 0.1
    for name, value in SETTINGS.items():
        effect.set(name, value)
    y = stream(effect.process, x, 256)
    assert effect.sections.shape[0] == count == 2 + 6 + 4  # 18 dB/oct: 2, six biquads, 48: 4
    assert np.all(np.isfinite(y))


def test_frequencies_above_nyquist_are_designed_just_below_it():
    effect = ParametricEQ(bands=["highshelf"], b1_freq_hz=20000.0, b1_gain_db=6.0)
    effect.prepare(ProcessSpec(32000, 64, 1))
    _, h = scipy.signal.sosfreqz(effect.sections, [100.0], fs=32000)
    assert abs(20 * np.log10(abs(h[0]))) < 0.01


@pytest.mark.parametrize("seed", range(4))
def test_graphic_eq_meets_its_sliders_at_the_band_centres(seed):
    sliders = np.random.default_rng(seed).uniform(-12, 12, len(GRAPHIC_BANDS_HZ))
    effect = GraphicEQ(**{p.name: g for p, g in zip(GraphicEQ.params, sliders)})
    effect.prepare(ProcessSpec(RATE, 128, 2))
    _, h = scipy.signal.sosfreqz(effect.sections, GRAPHIC_BANDS_HZ, fs=RATE)
    assert np.max(np.abs(20 * np.log10(np.abs(h)) - sliders)) < 1.2


def test_graphic_eq_is_flat_at_zero_and_names_its_bands():
    effect = GraphicEQ().prepare(ProcessSpec(RATE, 64, 1))
    _, h = scipy.signal.sosfreqz(effect.sections, 256, fs=RATE)
    np.testing.assert_allclose(np.abs(h), 1.0, atol=1e-12)
    assert [p.name for p in GraphicEQ.params][::3] == ["gain_31hz_db", "gain_250hz_db", "gain_2khz_db", "gain_16khz_db"]


def test_moving_and_still_bands_design_like_one_step_at_a_time():
    """The parametric EQ designs a band that holds still over a ramp's steps once and keeps
    it while its values stay; every step still equals designing that step's values alone."""
    bands = ["lowshelf", "peaking", {"kind": "highpass", "slope_db": 24}]
    eq, fresh = (ParametricEQ(bands=bands).prepare(ProcessSpec(48000, 64, 2)) for _ in range(2))
    steps = 16
    values = {p.name: np.full(steps, eq.value(p.name)) for p in eq.params}
    values["b2_freq_hz"] = np.geomspace(500, 2000, steps)  # one band moves
    for still_gain in (eq.value("b1_gain_db"), 5.0):  # then a still band takes a new value
        values["b1_gain_db"] = np.full(steps, still_gain)
        designs = eq.design_steps(values)
        assert designs.shape == (steps, 4, 6)
        for i in range(steps):
            alone = fresh.design_steps({name: v[i : i + 1] for name, v in values.items()})[0]
            assert np.allclose(designs[i], alone, rtol=1e-12, atol=1e-15)
