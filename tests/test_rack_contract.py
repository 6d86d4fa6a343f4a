"""The contract every registered effect keeps: streaming, reset, bypass, devices, parameters.

Each effect type in ``rtfx.EFFECTS`` is built from its ``example_args`` and checked here, so a
new effect is tested the moment it is registered.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rtfx import EFFECTS, ProcessSpec

from conftest import DEVICES, rel_err, stream

RATE = 48000
BLOCK = 256
TYPES = sorted(EFFECTS)
PARAMS = [(name, p.name) for name in TYPES for p in EFFECTS[name].params]


def build(type_name: str, blocksize: int = BLOCK, channels: int = 2, device="cpu", capture=False, **values):
    cls = EFFECTS[type_name]
    return cls(**{**cls.example_args, **values}).prepare(ProcessSpec(RATE, blocksize, channels, device, capture=capture))


def music(seconds: float = 0.25, seed: int = 0) -> np.ndarray:
    """Two channels: a plucked-like decaying chord plus a little noise, peak about 0.5."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    tone = sum(np.sin(2 * np.pi * f * t + k) for k, f in enumerate((110.0, 165.0, 220.0, 330.0)))
    envelope = np.exp(-3 * t) * (1 - np.exp(-t / 0.002))
    x = 0.12 * tone * envelope + 0.01 * rng.standard_normal(t.size)
    return np.stack([x, np.roll(x, 37)])


def sine(seconds: float, freq_hz: float = 110.0, amplitude: float = 0.5) -> np.ndarray:
    """Two channels in quadrature, faded in over 20 ms (no onset click)."""
    t = np.arange(int(seconds * RATE)) / RATE
    fade = np.sin(0.5 * np.pi * np.minimum(t / 0.02, 1)) ** 2
    phase = 2 * np.pi * freq_hz * t
    return amplitude * fade * np.stack([np.sin(phase), np.cos(phase)])


def largest_jump(y: np.ndarray) -> float:
    """Largest sample-to-sample step |y[n] - y[n-1]| (a click is a step far above the signal's)."""
    return float(np.max(np.abs(np.diff(y, axis=-1))))


@pytest.mark.parametrize("type_name", TYPES)
def test_same_output_for_any_block_partition(type_name):
    x = music()
    reference = stream(build(type_name).process, x, BLOCK)
    assert np.all(np.isfinite(reference))
    for sizes in ([1, 7, 64, 200], "random"):
        assert rel_err(stream(build(type_name).process, x, sizes, seed=3), reference) <= 1e-5, sizes


@pytest.mark.parametrize("type_name", TYPES)
def test_reset_returns_to_the_initial_state(type_name):
    effect, x = build(type_name), music()
    first = stream(effect.process, x, BLOCK)
    effect.reset()
    assert rel_err(stream(effect.process, x, BLOCK), first) <= 1e-6


@pytest.mark.parametrize("type_name", TYPES)
def test_bypass_fades_to_the_dry_signal(type_name):
    """The dry signal comes out delayed by the effect's latency: toggling never jumps in time."""
    effect, x = build(type_name), music(0.3)
    effect.bypass = True
    y = stream(effect.process, x, BLOCK)
    delayed = np.pad(x, ((0, 0), (effect.latency, 0)))[:, : x.shape[-1]]
    tail = slice(int(0.1 * RATE), None)
    np.testing.assert_allclose(y[:, tail], delayed[:, tail], atol=1e-6)


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_matches_cpu(type_name, device):
    x = music()
    cpu = stream(build(type_name).process, x, BLOCK)
    cuda = stream(build(type_name, device=device).process, x, BLOCK, device=device)
    assert rel_err(cuda, cpu) <= 1e-5


@pytest.mark.parametrize("type_name", TYPES)
def test_bad_parameter_values_name_the_effect_and_parameter(type_name):
    effect = EFFECTS[type_name](**EFFECTS[type_name].example_args)
    for param in effect.params:
        with pytest.raises(ValueError, match=f"{type_name}: {param.name} = .* outside"):
            effect.set(param.name, param.maximum + abs(param.maximum) + 1)
        with pytest.raises(ValueError, match=f"{type_name}: {param.name} must be a number"):
            effect.set(param.name, "loud")
    with pytest.raises(ValueError, match=f"{type_name}: unknown parameter"):
        effect.set("no_such_parameter", 1.0)


def sweep_values(param, count: int) -> np.ndarray:
    """``count`` values across the range (frequencies capped below Nyquist)."""
    top = min(param.maximum, 0.45 * RATE) if param.unit == "Hz" else param.maximum
    if param.scale == "log":
        return np.geomspace(param.minimum, top, count)
    return np.linspace(param.minimum, top, count)


@pytest.mark.parametrize("capture", [False, True], ids=["normal", "capture"])
@pytest.mark.parametrize("type_name, param_name", PARAMS)
def test_parameter_sweeps_are_click_free(type_name, param_name, capture):
    """Sweep one parameter over its whole range and back while a sine plays.

    The largest sample-to-sample step of the output must stay within 1.5x the largest found
    in steady renders at five settings across the range (plus 1e-3 for near-silent settings).
    In capture mode (64-frame blocks, as live on a GPU) parameters move once per block.
    """
    param = next(p for p in EFFECTS[type_name].params if p.name == param_name)
    block = 64 if capture else BLOCK
    settle = int(0.1 * RATE) // block * block
    steady = 0.0
    for value in sweep_values(param, 5):
        y = stream(build(type_name, block, capture=capture, **{param_name: value}).process, sine(0.16), block)
        steady = max(steady, largest_jump(y[:, settle:]))
    targets = list(sweep_values(param, 5)) + list(sweep_values(param, 5))[::-1]
    hold = 6 * BLOCK // block  # blocks per target (32 ms: each ramp completes)
    effect, x = build(type_name, block, capture=capture), sine(0.05 + hold * block / RATE * len(targets))
    xt = torch.from_numpy(x.astype(np.float32))
    out = []
    for i, start in enumerate(range(0, x.shape[-1], block)):
        step, phase = divmod(i - 10 * BLOCK // block, hold)  # the first target after 53 ms
        if 0 <= step < len(targets) and phase == 0:
            effect.set(param_name, targets[step])
        out.append(effect.process(xt[:, start : start + block]).double().numpy().copy())
    swept = np.concatenate(out, axis=-1)
    assert np.all(np.isfinite(swept))
    assert largest_jump(swept) <= 1.5 * steady + 1e-3
