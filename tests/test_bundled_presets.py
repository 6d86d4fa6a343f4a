"""Every bundled preset loads and renders its demo file: finite, under 0 dBFS, audibly processed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rtfx
from rtfx.audiofile import read_audio

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PRESETS = sorted((ASSETS / "presets").glob("*.json"))
SECONDS = 2.5


def demo_input(preset: Path) -> tuple[np.ndarray, int]:
    """The matching demo file (voice for vocal presets, the guitar DI otherwise), 2 channels."""
    audio, rate = read_audio(ASSETS / "audio" / ("voice.wav" if preset.stem.startswith("vocal") else "guitar_di.wav"))
    audio = audio[:, : int(SECONDS * rate)]
    return np.repeat(audio[:1], 2, axis=0).astype(np.float32), rate


def test_the_rack_presets_are_bundled():
    names = {p.stem for p in PRESETS}
    assert {"guitar_clean", "guitar_crunch", "guitar_lead", "vocal_live", "vocal_radio"} <= names


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_renders_its_demo_file(preset):
    """The chain itself (no output guard) stays finite and under 0 dBFS at a usable level."""
    x, rate = demo_input(preset)
    chain = rtfx.load_preset(preset).prepare(rtfx.ProcessSpec(rate, 256, 2))
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        y = torch.cat([chain.process(xt[:, i : i + 256]).clone() for i in range(0, x.shape[1], 256)], dim=1).numpy()
    assert np.all(np.isfinite(y))
    assert np.max(np.abs(y)) <= 1.0
    rms_db = 10 * np.log10(np.mean(y.astype(np.float64) ** 2))
    assert -45 < rms_db < -8
    # The preset changes the sound: well away from the dry input.
    dry = np.pad(x, ((0, 0), (chain.latency, 0)))[:, : x.shape[1]]
    assert np.sqrt(np.mean((y - dry) ** 2)) > 0.3 * np.sqrt(np.mean(dry**2))
