"""Preset cells: a bundled preset chain through rtfx's live path, against SciPy streaming the
same chain, and the same chain from one CUDA graph per block.

rtfx runs the chain through ``BlockProcessor`` (``rtfx/stream.py``), exactly as the live
callback does: interleaved ``(frames, channels)`` numpy blocks in and out, on CPU or, on CUDA,
one pinned copy each way per block with eager launches (rtfx-cuda) or one CUDA graph replay
(rtfx-cuda-graph). SciPy's model of a chain is built stage by
stage from what each stage declares (gain, second-order sections, impulse response, mix,
bypass); a stage it cannot model (a non-linear effect, say) makes the whole preset
"no SciPy model", said in the output rather than hidden.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.signal

from . import cells as C
from .timing import Impl, Unavailable

CUDA_GRAPH_NAME = "rtfx-cuda-graph"


class NoScipyModel(Exception):
    """A stage of the chain has no SciPy equivalent here."""


def load_chain(cell: C.Cell):
    from rtfx import load_preset
    return load_preset(C.PRESET_DIR.parent.parent / cell.preset)


def spec_for(cell: C.Cell, device: str):
    from rtfx.spec import ProcessSpec
    return ProcessSpec(C.SAMPLERATE, cell.frames, cell.channels, device=device)


# -- SciPy model of a chain --------------------------------------------------------------------
def _stage_models(stage) -> list:
    """``[(kind, payload, mix)]`` for a prepared stage; nested chains are flattened."""
    from rtfx.chain import Chain
    from rtfx.effects.convolution import Convolution
    from rtfx.effects.gain import Gain, db_to_linear
    from rtfx.effects.sos_effect import SosEffect

    mix = 0.0 if stage.bypass else stage.get("mix")
    if isinstance(stage, Chain):
        inner = [m for s in stage.stages for m in _stage_models(s)]
        return [("chain", inner, mix)]
    if isinstance(stage, Gain):
        return [("gain", db_to_linear(stage.get("gain_db")), mix)]
    if isinstance(stage, SosEffect):
        return [("sos", np.array(stage.sections, dtype=np.float64), mix)]
    if isinstance(stage, Convolution):
        h = stage.impulse_response(C.SAMPLERATE) * db_to_linear(stage.get("gain_db"))
        return [("fir", h, mix)]
    raise NoScipyModel(f"stage {stage.type_name or type(stage).__name__!r} has no SciPy model")


@lru_cache(maxsize=None)
def chain_model(cell: C.Cell) -> tuple:
    """The cell's chain as SciPy stages (cached); raises ``NoScipyModel``."""
    try:
        return tuple(_stage_models(load_chain(cell).prepare(spec_for(cell, "cpu"))))
    except NoScipyModel:
        raise
    except Exception as exc:   # a preset that does not load or prepare: said, not fatal
        raise NoScipyModel(f"the chain could not be modelled: {type(exc).__name__}: {exc}") from exc


def _apply(models, x: np.ndarray) -> np.ndarray:
    """Whole-signal float64 reference of ``models`` on ``x`` ``(channels, n)``."""
    for kind, payload, mix in models:
        if kind == "gain":
            wet = x * payload
        elif kind == "sos":
            wet = scipy.signal.sosfilt(payload, x, axis=-1)
        elif kind == "fir":
            wet = scipy.signal.oaconvolve(x, payload, axes=-1)[:, : x.shape[-1]]
        else:
            wet = _apply(payload, x)
        x = wet if mix == 1.0 else x + mix * (wet - x)
    return x


def scipy_reference(cell: C.Cell, x64: np.ndarray) -> np.ndarray | None:
    try:
        return _apply(chain_model(cell), x64)
    except NoScipyModel:
        return None


class ScipyChainPeer:
    """SciPy streaming the chain block by block: ``sosfilt`` with zi per SOS stage, ``lfilter``
    with zi per channel per FIR/IR stage (the naive path), gains and mixes in numpy."""

    def __init__(self, models, blocks: np.ndarray):
        self.models, self.x = models, blocks
        self.channels = blocks.shape[1]
        self.reset()

    def _init_state(self, models):
        state = []
        for kind, payload, _ in models:
            if kind == "sos":
                state.append(np.zeros((payload.shape[0], self.channels, 2)))
            elif kind == "fir":
                state.append(np.zeros((self.channels, payload.shape[-1] - 1)))
            elif kind == "chain":
                state.append(self._init_state(payload))
            else:
                state.append(None)
        return state

    def reset(self) -> None:
        self.state = self._init_state(self.models)

    def _run(self, models, state, x):
        for k, (kind, payload, mix) in enumerate(models):
            if kind == "gain":
                wet = x * payload
            elif kind == "sos":
                wet, state[k] = scipy.signal.sosfilt(payload, x, axis=-1, zi=state[k])
            elif kind == "fir":
                wet = np.empty(x.shape)
                for c in range(self.channels):
                    h = payload[c if payload.shape[0] > 1 else 0]
                    wet[c], state[k][c] = scipy.signal.lfilter(h, 1.0, x[c], zi=state[k][c])
            else:
                wet = self._run(payload, state[k], x)
            x = wet if mix == 1.0 else x + mix * (wet - x)
        return x

    def step(self, i: int):
        # float64 from the start: NumPy keeps float32 * Python float in float32
        return self._run(self.models, self.state, self.x[i].astype(np.float64))

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return np.array(y, dtype=np.float64)


# -- rtfx's live path --------------------------------------------------------------------------
class LivePath:
    """``BlockProcessor.process(indata, outdata)`` on interleaved float32 blocks."""

    def __init__(self, cell: C.Cell, blocks: np.ndarray, device: str, graph: bool = False):
        from rtfx.stream import BlockProcessor
        self.processor = BlockProcessor(load_chain(cell), spec_for(cell, device), graph=graph)
        self.x = np.ascontiguousarray(blocks.transpose(0, 2, 1))   # (n, frames, channels)
        self.out = np.zeros(self.x.shape[1:], dtype=np.float32)

    def step(self, i: int):
        self.processor.process(self.x[i], self.out)
        return self.out

    def reset(self) -> None:
        self.processor.reset()

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return np.array(y.T, dtype=np.float64)


def cuda_graph_live_path(cell: C.Cell, blocks: np.ndarray) -> LivePath:
    """The chain from one CUDA graph per block (raises ``NotCapturable`` naming the effects
    that cannot be captured)."""
    return LivePath(cell, blocks, "cuda", graph=True)


def implementations(cell: C.Cell, blocks: np.ndarray, devices: list[str]) -> list:
    impls = []
    for device in devices:
        try:
            live = LivePath(cell, blocks, device)
        except Exception as exc:   # a preset that does not load or prepare here
            impls.append(Unavailable(f"rtfx-{device}", "failed", f"{type(exc).__name__}: {exc}",
                                     role="rtfx", device=device))
            continue
        desc = ("rtfx live path on CPU: BlockProcessor.process(indata, outdata), interleaved numpy"
                if device == "cpu" else
                "rtfx live path on CUDA, eager: BlockProcessor with pinned H2D/D2H, per-block sync")
        impl = Impl(f"rtfx-{device}", "rtfx", device, live.step, live.reset, live.to_numpy,
                    cell.peer_blocks.get(f"rtfx-{device}"), desc)
        impl.kernel = "BlockProcessor(" + " | ".join(s.type_name for s in live.processor.chain.stages) + ")"
        impls.append(impl)
    if "cuda" in devices:
        try:
            graph = cuda_graph_live_path(cell, blocks)
        except Exception as exc:  # an effect that cannot be captured: the reason is the row
            impls.append(Unavailable(CUDA_GRAPH_NAME, "failed", f"{type(exc).__name__}: {exc}", role="rtfx",
                                     device="cuda"))
        else:
            impls.append(Impl(CUDA_GRAPH_NAME, "rtfx", "cuda", graph.step, graph.reset, graph.to_numpy,
                              cell.peer_blocks.get(CUDA_GRAPH_NAME),
                              "rtfx live path on CUDA: one pinned copy in, one CUDA graph replay, one copy out"))
    try:
        models = chain_model(cell)
    except NoScipyModel as exc:
        impls.append(Unavailable("scipy-chain", "n/a", f"n/a: {exc}"))
    else:
        impls.append(Impl("scipy-chain", "peer", "cpu", *_methods(ScipyChainPeer(models, blocks)),
                          cell.peer_blocks.get("scipy-chain"),
                          "SciPy streaming the same chain: sosfilt/lfilter with zi per stage"))
    for name in [f"{lib}-{d}" for lib in ("torchfx", "torchaudio") for d in devices] + ["pedalboard"]:
        lib = name.split("-")[0]
        impls.append(Unavailable(name, "n/a", f"n/a: {lib} cannot load an rtfx preset"))
    return impls


def _methods(obj):
    return obj.step, obj.reset, obj.to_numpy
