"""CUDA-graph capture: every effect that says it can be captured replays the same kernels.

On the CPU, ``rtfx.graph.trace`` records the ops of one block and checks that later blocks,
with parameters moving, bypass and mix toggled, issue exactly the same ops with the same
arguments and buffers (what a captured graph replays). The CUDA tests capture for real and
compare the graph's output with the eager chain's.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.graph.trace import first_difference, trace_block

RATE = 48000
BLOCK = 64
TYPES = sorted(EFFECTS)


def capture_spec(device="cpu", blocksize=BLOCK, channels=2) -> ProcessSpec:
    return ProcessSpec(RATE, blocksize, channels, device, capture=True)


def random_value(param, rng) -> float:
    if param.scale == "log":
        return float(np.exp(rng.uniform(np.log(param.minimum), np.log(param.maximum))))
    return float(rng.uniform(param.minimum, param.maximum))


def move_something(effect, rng, step: int) -> None:
    """Every few blocks: a new value for every parameter, bypass toggled, or a new mix."""
    if step % 3 == 0:
        for param in effect.params:
            try:
                effect.set(param.name, random_value(param, rng))
            except ValueError:  # e.g. a frequency above this rate's Nyquist: refused, kept
                pass
    elif step % 3 == 1:
        effect.bypass = not effect.bypass
    else:
        effect.set("mix", float(rng.uniform(0, 1)))


def noise_blocks(count: int, channels: int = 2, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = (0.3 * rng.standard_normal((channels, count * BLOCK))).astype(np.float32)
    return list(torch.from_numpy(x).split(BLOCK, -1))


def replay_problem(effect, blocks: int = 40, seed: int = 1) -> str:
    """Why a graph captured on one block of ``effect`` would not replay later ones ("" if it would)."""
    rng = np.random.default_rng(seed)
    audio = noise_blocks(blocks)
    inp = torch.empty_like(audio[0])  # a graph reads its input from one buffer
    for block in audio[:3]:
        effect.process(inp.copy_(block))
    effect.before_block(BLOCK)
    reference = trace_block(effect.run_block, inp.copy_(audio[3]))
    for i, block in enumerate(audio[4:]):
        if i % 4 == 0:
            move_something(effect, rng, i // 4)
        effect.before_block(BLOCK)
        problem = first_difference(reference, trace_block(effect.run_block, inp.copy_(block)))
        if problem:
            return f"block {i + 4}: {problem}"
    return ""


@pytest.mark.parametrize("type_name", TYPES)
def test_capturable_effects_replay_the_same_kernels(type_name):
    cls = EFFECTS[type_name]
    if cls.capture_problem:
        pytest.skip(f"not capturable: {cls.capture_problem}")
    effect = cls(**cls.example_args).prepare(capture_spec())
    assert replay_problem(effect) == ""
