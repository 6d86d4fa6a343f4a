"""Tuner: accuracy on sines and on the bundled guitar DI, no pitch on silence and noise,
the signal passes through unchanged, readings independent of the block partition."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.effects.tuner import Tuner, TunerReading, name_pitch

from conftest import DEVICES, partition

RATE = 48000
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def cents(f: float, reference: float) -> float:
    return 1200 * math.log2(f / reference)


def midi_hz(midi: float, reference_hz: float = 440.0) -> float:
    return reference_hz * 2 ** ((midi - 69) / 12)


def readings(tuner: Tuner, x: np.ndarray, sizes, device="cpu") -> list[TunerReading]:
    """Stream ``x`` ``(channels, frames)``; the reading after each block."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    out, start = [], 0
    for n in partition(x.shape[-1], sizes):
        tuner.process(xt[:, start : start + n])
        out.append(tuner.reading())
        start += n
    return out


def stereo_sine(freq_hz: float, seconds: float = 0.2, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.stack([np.sin(2 * np.pi * freq_hz * t + 0.3), np.cos(2 * np.pi * freq_hz * t)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reference_hz", [440.0, 432.0])
def test_sines_across_the_guitar_range_within_one_cent(reference_hz, device):
    tuner = Tuner(reference_hz=reference_hz).prepare(ProcessSpec(RATE, 256, 2, device))
    for midi, offset in [(40, 0.0), (45, 0.3), (50, -7.0), (55, 12.5), (64, -23.0), (71, 41.0), (81, -0.7), (88, 3.0)]:
        freq = midi_hz(midi + offset / 100, reference_hz)  # E2 .. E6, a little off the note
        tuner.reset()
        reading = readings(tuner, stereo_sine(freq), 256, device)[-1]
        names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
        assert reading.has_pitch and reading.clarity > 0.99
        assert abs(cents(reading.frequency_hz, freq)) <= 1.0, (midi, reading)
        assert (reading.note, reading.octave) == (names[midi % 12], midi // 12 - 1)
        assert abs(reading.cents - offset) <= 1.0


def test_reference_changes_names_and_cents_not_the_frequency():
    tuner = Tuner().prepare(ProcessSpec(RATE, 512, 1))
    readings(tuner, stereo_sine(415.0)[:1], 512)
    at_440 = tuner.reading()
    tuner.set("reference_hz", 415.0)
    at_415 = tuner.reading()
    assert at_415.frequency_hz == at_440.frequency_hz
    assert (at_440.note, round(at_440.cents)) == ("G#", -1)  # 415 Hz is G#4 - 0.8 cents at A4 = 440
    assert at_415.note == "A" and abs(at_415.cents) < 0.5


def tuned_notes() -> list[tuple[float, float, int, float]]:
    """``(start s, end s, MIDI note, tuned Hz)`` of every string struck in guitar_di.wav.

    Replays the random draws of ``assets/make_assets.py`` to recover each string's exact
    tuning (the strings are detuned by up to +-2 cents on purpose).
    """
    sys.path.insert(0, str(ASSETS))
    try:
        import make_assets as make
    finally:
        sys.path.remove(str(ASSETS))
    rng, beat, notes = np.random.default_rng(2024), 60.0 / 126.0, []
    for start, length, midis, _velocity, _mute in make.RIFF:
        for i, midi in enumerate(midis):
            t0 = start * beat + 0.009 * i + rng.uniform(-0.004, 0.004)
            tuned = make.midi_hz(midi + rng.uniform(-0.02, 0.02))
            rng.uniform(0.85, 1.0)  # velocity
            rng.standard_normal(int(round(make.FS / tuned)))  # the pluck's noise burst
            notes.append((t0, (start + length) * beat, midi, tuned))
    return notes


def guitar_readings(sizes=1024) -> list[TunerReading]:
    x, rate = sf.read(ASSETS / "audio" / "guitar_di.wav", dtype="float32")
    assert rate == RATE
    return readings(Tuner().prepare(ProcessSpec(RATE, 1024, 1)), x[None], sizes)


def test_guitar_di_single_notes_within_five_cents():
    """The single-note line (G3 A3 B3 D4 B3 A3): every reading whose window lies in the
    sustained part of a note (50 ms after the pick, before the fretting hand damps it)."""
    single = [n for n in tuned_notes() if 55 <= n[2] <= 62 and 2.3 < n[0] < 3.8]
    assert [n[2] for n in single] == [55, 57, 59, 62, 59, 57]
    window = 4096 / RATE
    checked = 0
    for reading in guitar_readings():
        end = reading.frame / RATE
        for start, stop, midi, tuned in single:
            if start + 0.05 <= end - window and end <= stop:
                assert reading.has_pitch, (midi, reading)
                assert abs(cents(reading.frequency_hz, tuned)) <= 5.0, (midi, tuned, reading)
                assert abs(cents(reading.frequency_hz, midi_hz(midi))) <= 5.0
                checked += 1
    assert checked >= 20


def test_guitar_di_low_e_chord_reads_e():
    """The ringing E5 power chord at the end (E2 B2 E3): its common period is that of E1
    (E2 and B2 are a 2:3 ratio), so the reading is E, an octave low, in tune within 5 cents."""
    low_e = [r for r in guitar_readings() if 4.95 <= r.frame / RATE <= 5.7]
    assert len(low_e) >= 30
    for reading in low_e:
        assert reading.has_pitch and reading.note == "E" and abs(reading.cents) <= 5.0, reading


def test_guitar_di_readings_do_not_depend_on_the_block_partition():
    by_hop = {r.frame: r for r in guitar_readings(1024)}
    for reading in guitar_readings("random")[::50]:
        if reading.frame:
            expected = by_hop[reading.frame]
            assert reading.has_pitch == expected.has_pitch
            if reading.has_pitch:
                assert abs(cents(reading.frequency_hz, expected.frequency_hz)) < 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_silence_and_white_noise_read_no_pitch(device):
    tuner = Tuner().prepare(ProcessSpec(RATE, 128, 2, device))
    assert not tuner.reading().has_pitch
    silence = readings(tuner, np.zeros((2, RATE // 4)), 128, device)
    assert all(not r.has_pitch and r.frequency_hz is None and r.note is None for r in silence)
    noise = 0.3 * np.random.default_rng(1).standard_normal((2, RATE // 2))
    heard = readings(tuner, noise, 128, device)[RATE // 8 // 128 :]
    assert all(not r.has_pitch for r in heard)
    assert max(r.clarity for r in heard) < 0.5
    assert all(-15 < r.level_dbfs < -5 for r in heard)


@pytest.mark.parametrize("device", DEVICES)
def test_output_is_the_input(device):
    tuner = Tuner().prepare(ProcessSpec(RATE, 256, 2, device))
    x = torch.from_numpy(stereo_sine(110.0, 0.1).astype(np.float32)).to(device)
    for block in x.split(256, -1):
        assert torch.equal(tuner.process(block), block)


def test_reading_before_prepare_and_pitch_names():
    assert not Tuner().reading().has_pitch
    assert name_pitch(440.0) == ("A", 4, 0.0)
    note, octave, off = name_pitch(82.0)
    assert (note, octave) == ("E", 2) and -9 < off < -8
    assert EFFECTS["tuner"] is Tuner and Tuner.category == "analysis"


def test_reading_from_another_thread_while_streaming():
    """A GUI thread polls ``reading()`` while the audio thread streams: never an error, and
    every reading is either no pitch (the start) or the note being played."""
    import threading

    tuner = Tuner().prepare(ProcessSpec(RATE, 128, 2))
    seen, done = [], threading.Event()

    def poll():
        while not done.is_set():
            seen.append(tuner.reading())

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        readings(tuner, stereo_sine(midi_hz(45), 0.3), 128)
    finally:
        done.set()
        reader.join()
    assert len(seen) > 10
    assert all(not r.has_pitch or (r.note, r.octave) == ("A", 2) for r in seen)
    assert tuner.reading().has_pitch
