"""CUDA-graph capture: every effect that says it can be captured replays the same kernels.

On the CPU, ``rtfx.graph.trace`` records the ops of one block and checks that later blocks,
with parameters moving, bypass and mix toggled, issue exactly the same ops with the same
arguments and buffers (what a captured graph replays). The CUDA tests capture for real and
compare the graph's output with the eager chain's.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec
from rtfx.chain import Chain
from rtfx.effect import Effect
from rtfx.graph.runner import GraphRunner, NotCapturable, capture_problems
from rtfx.graph.trace import first_difference, trace_block
from rtfx.preset import load_preset
from rtfx.stream import BlockProcessor

from conftest import CUDA, DEVICES, rel_err

PRESETS = Path(__file__).resolve().parents[1] / "assets" / "presets"

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


def run_blocks(effect, blocks) -> np.ndarray:
    inp = torch.empty_like(blocks[0])
    return np.concatenate([effect.process(inp.copy_(b)).clone().double().numpy() for b in blocks], -1)


@pytest.mark.parametrize("type_name", TYPES)
def test_capture_mode_equals_the_normal_mode_at_steady_parameters(type_name):
    cls = EFFECTS[type_name]
    if cls.capture_problem:
        pytest.skip(f"not capturable: {cls.capture_problem}")
    blocks = noise_blocks(20)
    normal = run_blocks(cls(**cls.example_args).prepare(ProcessSpec(RATE, BLOCK, 2)), blocks)
    captured = run_blocks(cls(**cls.example_args).prepare(capture_spec()), blocks)
    scale = max(np.max(np.abs(normal)), 1e-9)
    assert np.max(np.abs(captured - normal)) / scale <= 1e-6


# -- a chain that cannot be captured says so ------------------------------------------------
class HostLoop(Effect):
    """A test effect whose block runs a data-dependent host loop (never capturable)."""

    capture_problem = "its block loops on the host over a count that depends on the signal"

    def _process(self, x):
        return x * 0.5


class ReadsBack(Effect):
    """A test effect that claims to be capturable but reads a value back to the host."""

    def _process(self, x):
        return x * float(x.abs().max() > 1.0)


def test_an_effect_whose_kernel_blends_skips_the_mix():
    """In capture mode an effect whose ``_process`` can blend (``_blends``) gets the wet amounts
    from ``blend_ramp`` and ``_mix`` does not run; the output equals the plain effect's while the
    mix and the bypass move. Outside capture mode ``_mix`` blends as before."""
    gain = EFFECTS["gain"]

    class Blending(gain):
        type_name = ""  # not registered

        def _blends(self, frames: int) -> bool:
            return True

        def _process(self, x: torch.Tensor) -> torch.Tensor:
            wet, amounts = super()._process(x), self.blend_ramp(x.shape[-1])
            return wet if amounts is None else x + amounts * (wet - x)

    spec = ProcessSpec(48000, 64, 2, "cpu")
    captured = ProcessSpec(48000, 64, 2, "cpu", capture=True)
    blending, plain = Blending(gain_db=6.0).prepare(captured), gain(gain_db=6.0).prepare(captured)
    assert Blending().prepare(spec).blend_ramp(64) is None and plain.blend_ramp(64) is None
    blending._mix = lambda dry, wet: pytest.fail("the kernel blends: _mix must not run")
    x = torch.from_numpy(np.random.default_rng(6).standard_normal((2, 64 * 8)).astype(np.float32))
    for block in range(8):
        for effect in (blending, plain):
            if block == 2:
                effect.set("mix", 0.3)
            effect.bypass = block in (4, 5)
        piece = x[:, block * 64 : (block + 1) * 64]
        assert torch.allclose(blending.process(piece), plain.process(piece), atol=1e-6), block


def test_capture_problems_name_every_effect_that_cannot_be_captured():
    chain = Chain(EFFECTS["gain"](), HostLoop(), EFFECTS["biquad"](**EFFECTS["biquad"].example_args))
    assert capture_problems(chain) == [f"HostLoop: {HostLoop.capture_problem}"]


# -- on a GPU: the captured graph itself ------------------------------------------------------
def graph_and_cpu_outputs(make, count: int = 48, seed: int = 5):
    """Run ``make()`` from a CUDA graph and, in capture mode, eagerly on the CPU, moving the
    same parameters at the same blocks; returns both outputs ``(channels, frames)``."""
    runner = GraphRunner(make(), ProcessSpec(RATE, BLOCK, 2, "cuda"), ceiling=float("inf"))
    cpu = make().prepare(capture_spec())
    graph = runner.graph
    rngs = [np.random.default_rng(seed), np.random.default_rng(seed)]
    ys, refs = [], []
    for i, block in enumerate(noise_blocks(count)):
        if i % 6 == 5:
            for effect, rng in zip((runner.chain, cpu), rngs):
                move_something(effect, rng, i // 6)
        runner.inputs[:] = block.numpy().T  # interleaved, as PortAudio hands blocks over
        y, finite = runner.run(BLOCK)
        assert finite
        ys.append(y.T.astype(np.float64))
        refs.append(cpu.process(block.clone()).double().numpy().copy())
    assert runner.graph is graph  # parameters moved; nothing was captured again
    return np.concatenate(ys, -1), np.concatenate(refs, -1)


@pytest.mark.cuda
@CUDA
@pytest.mark.parametrize("type_name", TYPES)
def test_graph_replay_with_moving_parameters_equals_the_cpu(type_name):
    cls = EFFECTS[type_name]
    if cls.capture_problem:
        pytest.skip(f"not capturable: {cls.capture_problem}")
    y, ref = graph_and_cpu_outputs(lambda: cls(**cls.example_args))
    assert np.all(np.isfinite(y))
    assert rel_err(y, ref) <= 1e-5


@pytest.mark.cuda
@CUDA
@pytest.mark.parametrize("preset", ["guitar_clean", "guitar_crunch", "guitar_lead", "vocal_live", "vocal_radio"])
def test_a_preset_from_one_graph_equals_the_cpu(preset):
    path = PRESETS / f"{preset}.json"
    if capture_problems(load_preset(path)):
        pytest.skip("; ".join(capture_problems(load_preset(path))))
    y, ref = graph_and_cpu_outputs(lambda: load_preset(path), count=96)
    assert rel_err(y, ref) <= 1e-5


@pytest.mark.cuda
@CUDA
def test_a_block_announced_ahead_reads_its_parameters_one_block_earlier():
    """The live path (``run(frames, ahead)``): the host side of block i + 1 runs while the GPU
    works on block i. Moving the parameters before block i there equals moving them before
    block i + 1 without; a reset drops the controls written ahead."""
    path = PRESETS / "guitar_lead.json"
    spec = ProcessSpec(RATE, BLOCK, 2, "cuda")
    plain, early = (GraphRunner(load_preset(path), spec, ceiling=float("inf")) for _ in range(2))
    rngs = [np.random.default_rng(3), np.random.default_rng(3)]
    outputs = [[], []]
    for i, block in enumerate(noise_blocks(60)):
        for runner, rng, step, out in zip((plain, early), rngs, (i - 1, i), outputs):
            if step % 6 == 4:
                move_something(runner.chain, rng, step // 6)
            if i == 31:
                runner.reset()
            runner.inputs[:] = block.numpy().T
            y, finite = runner.run(BLOCK, BLOCK if runner is early else None)
            out.append(y.copy())
    assert np.abs(outputs[0][40]).max() > 0
    np.testing.assert_array_equal(np.concatenate(outputs[0]), np.concatenate(outputs[1]))


@pytest.mark.cuda
@CUDA
def test_a_chain_that_cannot_be_captured_raises_or_runs_eagerly_with_the_reason():
    make = lambda: Chain(EFFECTS["gain"](gain_db=-6), HostLoop())  # noqa: E731
    spec = ProcessSpec(RATE, BLOCK, 2, "cuda")
    with pytest.raises(NotCapturable, match="HostLoop: its block loops"):
        BlockProcessor(make(), spec, graph=True)
    eager = BlockProcessor(make(), spec)
    assert eager.runner is None and eager.path.startswith("cuda eager: HostLoop: its block loops")
    x = np.ascontiguousarray(noise_blocks(1)[0].numpy().T)
    out = np.empty_like(x)
    eager.process(x, out)
    np.testing.assert_allclose(out, np.clip(x * 10 ** (-6 / 20) * 0.5, -1, 1), atol=1e-6)


class Explodes(Effect):
    """A test effect whose output is infinite where its input is not zero."""

    def _process(self, x):
        return x / 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_the_output_guard_on_every_path(device):
    """NaN/Inf in: treated as 0; too loud: clipped; non-finite out: silence and a fault (on
    CUDA inside the graph)."""
    spec = ProcessSpec(RATE, BLOCK, 2, device)
    loud = BlockProcessor(EFFECTS["gain"](gain_db=20.0), spec)
    assert loud.path == ("cpu" if device == "cpu" else "cuda graph")
    x = np.full((BLOCK, 2), 0.5, np.float32)
    x[3, 0], x[5, 1] = np.nan, np.inf
    out = np.empty_like(x)
    loud.process(x, out)
    expected = np.clip(np.nan_to_num(x, nan=0.0, posinf=0.0) * 10.0, -1, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    broken = BlockProcessor(Chain(Explodes()), spec)
    broken.process(x, out)
    assert broken.faults == 1 and not out.any()


@pytest.mark.cuda
@CUDA
def test_a_capture_that_fails_falls_back_to_eager_with_the_reason():
    spec = ProcessSpec(RATE, BLOCK, 2, "cuda")
    with pytest.raises(RuntimeError):
        BlockProcessor(Chain(ReadsBack()), spec, graph=True)
    eager = BlockProcessor(Chain(ReadsBack()), spec)
    assert eager.runner is None and eager.path.startswith("cuda eager: capture failed")


@pytest.mark.cuda
@CUDA
def test_a_new_chain_is_captured_on_another_thread_while_one_plays():
    """Structure changes: the engine prepares a new processor (capture included) off the
    audio thread; the one playing keeps its output exactly."""
    spec = ProcessSpec(RATE, BLOCK, 2, "cuda")
    path = PRESETS / "guitar_clean.json"
    blocks = [np.ascontiguousarray(b.numpy().T) for b in noise_blocks(200)]
    def play(processor):
        out = np.empty_like(blocks[0])
        return np.concatenate([processor.process(b, out) or out.copy() for b in blocks])
    alone = play(BlockProcessor(load_preset(path), spec))
    playing = BlockProcessor(load_preset(path), spec)
    built = []
    thread = threading.Thread(target=lambda: built.append(BlockProcessor(load_preset(PRESETS / "vocal_live.json"), spec)))
    thread.start()
    during = play(playing)
    thread.join()
    assert built and built[0].runner is not None
    np.testing.assert_array_equal(during, alone)
