"""Presets: round trip, the bundled presets, the schema, and every kind of bad preset."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import rtfx
from rtfx.effects_doc import DOC_PATH, build_document
from rtfx.preset_schema import SCHEMA_PATH, build_schema

from conftest import rel_err, stream

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PRESETS = sorted((ASSETS / "presets").glob("*.json"))
RATE = 48000


def run(chain, x, blocksize=64):
    chain.prepare(rtfx.ProcessSpec(RATE, blocksize, x.shape[0]))
    return stream(chain.process, x, blocksize)


def test_schema_file_is_current():
    assert json.loads(SCHEMA_PATH.read_text()) == build_schema(), "run: python -m rtfx.preset_schema"


def test_effects_reference_is_current():
    assert DOC_PATH.read_text() == build_document(), "run: python -m rtfx.effects_doc"


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_bundled_presets_validate_load_and_round_trip(path, tmp_path):
    data = json.loads(path.read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    chain = rtfx.load_preset(path)
    x = np.random.default_rng(0).standard_normal((2, 4000)) * 0.1
    y = run(chain, x)
    saved = tmp_path / "sub" / "again.json"
    saved.parent.mkdir()
    rtfx.save_preset(chain, saved)
    jsonschema.validate(json.loads(saved.read_text()), json.loads(SCHEMA_PATH.read_text()))
    again = run(rtfx.load_preset(saved), x)
    assert np.all(np.isfinite(y)) and rel_err(again, y) < 1e-6


def test_round_trip_keeps_parameters_bypass_and_mix():
    chain = rtfx.Biquad("peaking", freq_hz=1234, q=2, gain_db=-5) | rtfx.Gain(gain_db=-2, mix=0.5)
    chain[1].bypass = True
    data = rtfx.preset_dict(chain)
    assert data["chain"] == [
        {"type": "biquad", "kind": "peaking", "freq_hz": 1234, "q": 2, "gain_db": -5},
        {"type": "gain", "gain_db": -2, "mix": 0.5, "bypass": True},
    ]
    again = rtfx.chain_from_preset(json.loads(json.dumps(chain.to_preset())))
    assert again.to_preset() == data
    x = np.random.default_rng(2).standard_normal((1, 3000))
    chain[1].bypass = again[1].bypass = False  # let the mixed gain through: outputs must match
    assert rel_err(run(again, x), run(chain, x)) < 1e-7


def write(tmp_path, data) -> Path:
    path = tmp_path / "p.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def preset(*stages):
    return {"format": "rtfx-preset", "version": 1, "chain": list(stages)}


@pytest.mark.parametrize(
    "data, message",
    [
        ('{"chain": [', r"bad JSON at line 1 column 12"),
        ("[]", r"must be a JSON object"),
        ({"chain": {}}, r"field \"chain\" must be a list"),
        ({"format": "other", "chain": []}, r"field \"format\" must be 'rtfx-preset'"),
        (preset({"type": "wah"}), r"stage 0: unknown type 'wah'"),
        (preset({"type": "gain"}, {"kind": "lowpass"}), r"stage 1: unknown type None"),
        (preset({"type": "gain", "gain_db": 99}), r"stage 0 \(gain\): gain_db = 99 dB is outside the allowed range \[-120, 48\]"),
        (preset({"type": "gain", "gain": 1}), r"stage 0 \(gain\): unknown field 'gain'"),
        (preset({"type": "gain", "mix": 2}), r"stage 0 \(gain\): mix = 2 is outside"),
        (preset({"type": "gain", "bypass": "yes"}), r"stage 0 \(gain\): field \"bypass\" must be true or false"),
        (preset({"type": "biquad", "kind": "lowpass", "q": -1}), r"stage 0 \(biquad\): q = -1 is outside"),
        (preset({"type": "biquad", "kind": "lopass"}), r"stage 0 \(biquad\): kind = 'lopass'; choose one of"),
        (preset({"type": "iir", "family": "butter", "order": 0}), r"stage 0 \(iir\): order = 0"),
        (preset({"type": "sos", "sos": [[1, 0, 0, 1, 0, 1.2]]}), r"stage 0 \(sos\): section 0 is unstable"),
        (preset({"type": "sos", "sos": [[1, 2, 3]]}), r"stage 0 \(sos\): sos must have shape"),
        (preset({"type": "fir", "file": "missing.npy"}), r"stage 0 \(fir\): file .*missing.npy' does not exist"),
        (preset({"type": "fir"}), r"stage 0 \(fir\): give exactly one of taps or file"),
        (preset({"type": "fir", "taps": [1, "x"]}), r"stage 0 \(fir\)"),
        (preset({"type": "chain", "stages": [{"type": "gain", "gain_db": "loud"}]}), r"stage 0.0 \(gain\): gain_db must be a number"),
    ],
)
def test_bad_presets_name_the_stage_and_field(tmp_path, data, message):
    with pytest.raises(rtfx.PresetError, match=message):
        rtfx.load_preset(write(tmp_path, data))


def test_missing_preset_file(tmp_path):
    with pytest.raises(rtfx.PresetError, match="cannot read preset"):
        rtfx.load_preset(tmp_path / "nope.json")


def test_fir_taps_from_npy_and_wav_relative_to_the_preset(tmp_path):
    taps = np.array([0.5, 0.3, -0.2, 0.1])
    np.save(tmp_path / "taps.npy", taps)
    rtfx.audiofile.write_audio(tmp_path / "taps.wav", taps[None].astype(np.float32), RATE)
    x = np.random.default_rng(1).standard_normal((1, 1000))
    expected = np.convolve(x[0], taps)[:1000]
    for name in ("taps.npy", "taps.wav"):
        chain = rtfx.load_preset(write(tmp_path, preset({"type": "fir", "file": name})))
        assert rel_err(run(chain, x, 32)[0], expected) < 1e-6


def test_frequency_above_nyquist_fails_at_prepare_with_the_rate():
    chain = rtfx.chain_from_preset(preset({"type": "biquad", "kind": "lowpass", "freq_hz": 30000}))
    with pytest.raises(ValueError, match=r"freq_hz = 30000 Hz must be in \(0, 24000\) Hz"):
        chain.prepare(rtfx.ProcessSpec(RATE, 64, 1))
