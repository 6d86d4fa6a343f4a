"""The engine in its own process: control messages in, shared-memory meters out."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import soundfile

import rtfx
from rtfx.audiofile import read_audio
from rtfx.live.session import LiveOptions

pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="needs Debian's jackd2 (make setup installs it)")

ASSETS = Path(__file__).resolve().parent.parent / "assets"
RATE, BLOCK = 48000, 256


@pytest.fixture(scope="module")
def jack():
    from rtfx.live.virtual import JackDummyServer

    with JackDummyServer(samplerate=RATE, period=BLOCK) as server:
        yield server


def busy(seconds: float) -> int:
    """Hold this process's GIL in pure Python, like a slow GUI slot."""
    end, count = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        count += 1
    return count


def test_engine_process_streams_takes_commands_and_publishes_meters(jack, tmp_path):
    from rtfx.live.process import EngineProcess

    audio, rate = read_audio(ASSETS / "audio" / "guitar_di.wav")
    soundfile.write(tmp_path / "riff.wav", audio[0, : 3 * rate], rate, subtype="FLOAT")
    options = LiveOptions(
        preset=ASSETS / "presets" / "guitar_demo.json", blocksize=BLOCK, input_file=tmp_path / "riff.wav",
        record=tmp_path / "out.wav", status=False,
    )
    engine = EngineProcess(options)
    info = engine.start()
    assert info["device"]["hostapi"] == "JACK Audio Connection Kit"
    for value in np.linspace(100, 400, 50):
        engine.set_parameter(1, "freq_hz", value)
    engine.set_bypass(2, True)
    engine.set_parameter(0, "no_such_parameter", 1.0)
    swap = rtfx.Chain(rtfx.Biquad("lowpass", freq_hz=3000), rtfx.Gain(gain_db=-3)).to_preset()
    engine.replace_chain({"chain": [{"type": "biquad", "kind": "lowpass", "q": -1}]})  # refused, chain kept
    engine.replace_chain(swap)
    engine.switch_dsp("cpu")  # the same device: a shadowed copy, crossfaded in
    if not torch.cuda.is_available():
        engine.switch_dsp("cuda")  # refused with the reason, the chain keeps playing
    before = engine.meters()["blocks"]
    busy(0.5)  # the client is stuck: the engine goes on
    during = engine.meters()
    assert during["alive"] == 1.0 and during["blocks"] > before + 0.3 * RATE / BLOCK
    deadline = time.monotonic() + 15
    while engine.meters()["alive"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the engine stops by itself once the file has played
    report = engine.stop()
    messages = engine.messages()
    errors = [payload for kind, payload in messages if kind == "error"]
    assert report is not None and report["faults"] == 0
    assert ("dsp", "cpu") in messages
    assert torch.cuda.is_available() or any(e.startswith("dsp: ") and "no CUDA GPU" in e for e in errors)
    assert any("unknown parameter 'no_such_parameter'" in e for e in errors)
    assert any("chain: stage 0 (biquad): q = -1 is outside" in e for e in errors)
    recorded = soundfile.info(tmp_path / "out.wav")
    assert recorded.frames >= 3 * rate


def test_engine_process_reports_a_bad_start(jack, tmp_path):
    from rtfx.live.process import EngineProcess

    engine = EngineProcess(LiveOptions(preset=tmp_path / "missing.json", status=False))
    with pytest.raises(RuntimeError, match="cannot read preset"):
        engine.start()
