"""Offline render through the shared block path, and the ``rtfx render`` command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile
import torch

import rtfx
import rtfx.audiofile
from rtfx.cli import main
from rtfx.stream import BlockProcessor

from conftest import rel_err

RATE = 48000
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def lowpass_preset(tmp_path, **extra):
    path = tmp_path / "lp.json"
    stage = {"type": "iir", "family": "butter", "btype": "lowpass", "order": 4, "cutoff_hz": 2000, **extra}
    path.write_text(json.dumps({"chain": [stage]}))
    return path


@pytest.mark.parametrize("blocksize", [1, 7, 64, 513])
def test_render_equals_one_shot_sosfilt_for_any_block_size(blocksize):
    x = (np.random.default_rng(0).standard_normal((2, 3000)) * 0.2).astype(np.float32)
    chain = rtfx.IIR("butter", "lowpass", 4, cutoff_hz=2000)
    y = rtfx.render(chain, x, RATE, blocksize)
    reference = scipy.signal.sosfilt(scipy.signal.butter(4, 2000, fs=RATE, output="sos"), x.astype(np.float64), axis=-1)
    assert y.shape == x.shape and y.dtype == np.float32
    assert rel_err(y, reference) < 1e-5


def test_output_guard_silences_nan_and_ceiling_clips():
    spec = rtfx.ProcessSpec(RATE, 4, 1)
    processor = BlockProcessor(rtfx.Gain(gain_db=20), spec)
    out = np.empty((4, 1), np.float32)
    processor.process(np.array([[0.5], [np.nan], [np.inf], [-0.01]], np.float32), out)
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0
    assert out[0, 0] == 1.0 and out[3, 0] == pytest.approx(-0.1, rel=1e-5)


def test_cli_render_writes_a_float_wav_of_the_same_length_and_rate(tmp_path, capsys):
    x = (np.random.default_rng(1).standard_normal(4801) * 0.1).astype(np.float32)
    soundfile.write(tmp_path / "in.wav", x, 44100, subtype="PCM_24")
    code = main(["render", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--preset", str(lowpass_preset(tmp_path)), "--blocksize", "64", "--quiet"])
    assert code == 0
    info = soundfile.info(tmp_path / "out.wav")
    assert (info.frames, info.samplerate, info.channels, info.subtype) == (4801, 44100, 1, "FLOAT")
    y, _ = soundfile.read(tmp_path / "out.wav", dtype="float64")
    x24, _ = soundfile.read(tmp_path / "in.wav", dtype="float64")
    reference = scipy.signal.sosfilt(scipy.signal.butter(4, 2000, fs=44100, output="sos"), x24)
    assert rel_err(y, reference) < 1e-5
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "missing.json"], "cannot read preset"),
        (["--dsp", "cuda"], "no CUDA GPU"),
        (["--channels", "3"], "needs 1 or 3"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(tmp_path, capsys, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("the 'no CUDA GPU' message can only be seen on a machine without a GPU")
    stereo = np.zeros((100, 2), np.float32)
    soundfile.write(tmp_path / "in.wav", stereo, RATE)
    base = ["render", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--preset", str(lowpass_preset(tmp_path)), "--quiet"]
    code = main(base + args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out.wav").exists()


def test_cli_refuses_a_cutoff_above_the_files_nyquist(tmp_path, capsys):
    soundfile.write(tmp_path / "in.wav", np.zeros(100, np.float32), 4000)
    code = main(["render", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--preset", str(lowpass_preset(tmp_path)), "--quiet"])
    assert code == 2 and "cutoff_hz = 2000 Hz must be in (0, 2000) Hz" in capsys.readouterr().err


def test_demo_chain_renders_the_same_for_any_block_size():
    """The full guitar demo (biquads, gain, cabinet IR, IIR, 2.5 s stereo hall) streamed in
    blocks of 7, 64 and 513 frames gives the samples of one 4096-frame pass."""
    audio, rate = rtfx.audiofile.read_audio(ASSETS / "audio" / "guitar_di.wav")
    x = np.repeat(audio[:, : rate // 2], 2, axis=0)
    preset = ASSETS / "presets" / "guitar_demo.json"
    reference = rtfx.render(rtfx.load_preset(preset), x, rate, 4096)
    assert np.max(np.abs(reference)) > 0.01
    for blocksize in (7, 64, 513):
        assert rel_err(rtfx.render(rtfx.load_preset(preset), x, rate, blocksize), reference) < 2e-6


def test_output_guard_recovers_after_a_non_finite_block():
    """A block that overflows to Inf comes out silent; the chain is reset and the next block
    is normal again (no stuck NaN in a filter state)."""
    spec = rtfx.ProcessSpec(RATE, 64, 1)
    processor = BlockProcessor(rtfx.Gain(gain_db=40) | rtfx.Biquad("lowpass", freq_hz=1000), spec)
    out = np.empty((64, 1), np.float32)
    processor.process(np.full((64, 1), 3e38, np.float32), out)
    assert processor.faults == 1 and not out.any()
    quiet = (0.001 * np.sin(np.arange(64) / 5)).astype(np.float32)[:, None]
    processor.process(quiet, out)
    assert processor.faults == 1 and np.all(np.isfinite(out)) and 0 < np.max(np.abs(out)) < 1
