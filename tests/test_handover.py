"""Handing the output from the playing chain to a new one: shadow, then crossfade."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtfx import ProcessSpec, load_preset
from rtfx.live.handover import Handover
from rtfx.stream import BlockProcessor

from conftest import CUDA

RATE, BLOCK = 48000, 256
PRESET = Path(__file__).resolve().parent.parent / "assets" / "presets" / "guitar_demo.json"


def tone_blocks(seconds: float) -> list[np.ndarray]:
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * 110 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    x = np.stack([x, np.roll(x, 29)], -1).astype(np.float32)
    return [x[i : i + BLOCK] for i in range(0, len(x) - BLOCK + 1, BLOCK)]


def play(blocks, processor, handover_at=None, make_handover=None) -> np.ndarray:
    """Stream ``blocks`` through ``processor``; at block ``handover_at`` start a handover."""
    out, handover, result = np.zeros((BLOCK, 2), np.float32), None, []
    for i, block in enumerate(blocks):
        if i == handover_at:
            handover = make_handover()
        processor.process(block, out)
        if handover is not None and handover.run(block, out):
            processor, handover = handover.processor, None
        result.append(out.copy())
    return np.concatenate(result)


def test_a_shadowed_handover_continues_the_same_signal():
    """The incoming chain shadows for the chain's memory, so after the crossfade the output
    is what the first chain alone would have played (the cabinet and hall IRs included)."""
    spec = ProcessSpec(RATE, BLOCK, 2)
    blocks = tone_blocks(8.0)
    alone = play(blocks, BlockProcessor(load_preset(PRESET), spec))
    incoming = BlockProcessor(load_preset(PRESET), spec)
    shadow = round(incoming.chain.tail_seconds * RATE / BLOCK)
    assert shadow * BLOCK >= 2.5 * RATE  # the hall's 2.5 s
    switched = play(blocks, BlockProcessor(load_preset(PRESET), spec), handover_at=20,
                    make_handover=lambda: Handover(incoming, 10, shadow))
    np.testing.assert_allclose(switched, alone, atol=2e-5 * np.max(np.abs(alone)))


def test_an_unshadowed_handover_crossfades_without_a_click():
    spec = ProcessSpec(RATE, BLOCK, 2)
    blocks = tone_blocks(1.0)
    quiet = load_preset(PRESET)
    quiet[3].set("gain_db", -30)  # a very different chain: a jump would be a click
    switched = play(blocks, BlockProcessor(load_preset(PRESET), spec), handover_at=50,
                    make_handover=lambda: Handover(BlockProcessor(quiet, spec), 10))
    steady = np.max(np.abs(np.diff(switched[: 50 * BLOCK], axis=0)))
    assert np.max(np.abs(np.diff(switched, axis=0))) <= 1.05 * steady


@pytest.mark.cuda
@CUDA
def test_moving_from_the_cpu_to_a_cuda_graph_continues_the_same_signal():
    blocks = tone_blocks(6.0)
    cpu = ProcessSpec(RATE, BLOCK, 2)
    alone = play(blocks, BlockProcessor(load_preset(PRESET), cpu))
    gpu = BlockProcessor(load_preset(PRESET), ProcessSpec(RATE, BLOCK, 2, "cuda"))
    shadow = round(gpu.chain.tail_seconds * RATE / BLOCK)
    assert gpu.path == "cuda graph"
    switched = play(blocks, BlockProcessor(load_preset(PRESET), cpu), handover_at=20,
                    make_handover=lambda: Handover(gpu, 10, shadow))
    np.testing.assert_allclose(switched, alone, atol=1e-4 * np.max(np.abs(alone)))
