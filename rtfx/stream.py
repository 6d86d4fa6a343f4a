"""One block in, one block out: the path shared by the live callback and the offline render.

``BlockProcessor.process`` takes and fills interleaved numpy blocks ``(frames, channels)``
exactly as PortAudio hands them to a callback, so a render of a file and a live stream of the
same file through the same chain produce the same samples.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .effect import Effect
from .graph.runner import GraphRunner, capture_problems
from .spec import ProcessSpec


class BlockProcessor:
    """Runs a prepared chain on numpy blocks, with an output guard.

    The guard: non-finite input samples become 0; a block whose output holds NaN or Inf is
    replaced by silence and the chain is reset (counted in ``faults``); the output is clipped
    to ``±ceiling`` (linear, 1.0 = 0 dBFS) so it can never run away.

    On CUDA the chain runs from one CUDA graph per block (``rtfx.graph.GraphRunner``) when every
    effect in it can be captured; otherwise it runs eagerly and ``eager_reason`` says which
    effects kept it from the graph.

    Args:
        chain: the effect to run (prepared here with ``spec``).
        spec: sample rate, block size, channels, device.
        ceiling: output limit, linear full scale.
        graph: on CUDA, ``None`` captures when possible, ``True`` insists (raises
            ``NotCapturable`` naming the effects that cannot be captured), ``False`` runs eagerly.
        ahead: on the graph path, write each next block's controls while the GPU runs this
            one (``GraphRunner.run``'s ``ahead``): ~the host's share of a block less per call,
            parameters read one block earlier. For a live stream (every block ``blocksize``
            frames); a render keeps the exact timing of parameter changes without it.
    """

    def __init__(self, chain: Effect, spec: ProcessSpec, ceiling: float = 1.0, graph: bool | None = None,
                 ahead: bool = False) -> None:
        self.spec = spec
        self.ahead = spec.blocksize if ahead else None
        self.ceiling = ceiling
        self.faults = 0
        self.blocks = 0
        self.runner, self.eager_reason = None, ""
        pin = spec.device.type == "cuda"
        if pin and graph is not False:
            problems = capture_problems(chain)
            if graph or not problems:
                self.runner = self._capture(chain, spec, ceiling, insist=bool(graph))
            else:
                self.eager_reason = "; ".join(problems)
        self.chain = self.runner.chain if self.runner else chain.prepare(spec)
        # Host buffers (channels, blocksize): the guard runs on them in numpy (a few us less
        # than torch ops per block). The graph runner's input is in its control bank.
        pin = pin and self.runner is None
        self._host_in = torch.zeros(spec.channels, spec.blocksize, pin_memory=pin)
        self._in = self._host_in.numpy()
        self._out = np.zeros((spec.channels, spec.blocksize), dtype=np.float32)
        self._device_in = torch.zeros_like(self._host_in, device=spec.device) if pin else self._host_in
        self._host_out = torch.zeros_like(self._host_in, pin_memory=True) if pin else None  # eager GPU
        self._warm_up()

    def _capture(self, chain: Effect, spec: ProcessSpec, ceiling: float, insist: bool) -> GraphRunner | None:
        """The chain's graph; if capturing fails (e.g. a neural model that reads a value back
        to the host), the error, or ``None`` with the reason in ``eager_reason``."""
        try:
            return GraphRunner(chain, spec, ceiling)
        except RuntimeError as error:
            if insist:
                raise
            self.eager_reason = f"capture failed: {error}"
            return None

    def reset(self) -> None:
        """Clear the chain's state (filters, delay lines, reverb tails)."""
        (self.runner or self.chain).reset()

    @property
    def path(self) -> str:
        """How blocks run: "cpu", "cuda graph" (one replay per block) or "cuda eager: <why>"."""
        if self.spec.device.type != "cuda":
            return "cpu"
        return "cuda graph" if self.runner is not None else f"cuda eager: {self.eager_reason or 'asked for'}"

    def _warm_up(self, seconds: float = 0.5) -> None:
        """Run ``seconds`` of silence, then reset: lazily built matrices, FFT plans and the
        schedules of long partitions (which tick every ~0.34 s) are paid for here, not in the
        first live callbacks."""
        silence = np.zeros((self.spec.blocksize, self.spec.channels), dtype=np.float32)
        blocks = max(1, int(np.ceil(seconds * self.spec.samplerate / self.spec.blocksize)))
        with torch.inference_mode():
            for _ in range(blocks):
                self.process(silence, silence.copy())
        self.reset()
        self.blocks = self.faults = 0

    def process(self, indata: np.ndarray, outdata: np.ndarray) -> None:
        """Process ``indata`` ``(frames, channels)`` float32 into ``outdata`` (same shape)."""
        frames = indata.shape[0]
        self.blocks += 1
        if self.runner is not None:  # one graph replay: copy in, kernels and guard, copy out
            np.copyto(self.runner.inputs[:frames], indata)
            out, finite = self.runner.run(frames, self.ahead)
            if finite:
                outdata[:] = out
            else:
                self._fault(outdata)
            return
        x, out = self._in[:, :frames], self._out[:, :frames]
        np.copyto(x, indata.T)
        if not math.isfinite(x.sum(dtype=np.float64)):  # one reduction per block; the repair only when needed
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if self._device_in is not self._host_in:  # eager GPU: one pinned copy each way
            wet = self.chain.process(self._device_in[:, :frames].copy_(self._host_in[:, :frames], non_blocking=True))
            y = self._host_out[:, :frames].copy_(wet)  # waits for the GPU
        else:
            y = self.chain.process(self._host_in[:, :frames])
        y = y.numpy()
        if not math.isfinite(y.sum(dtype=np.float64)):
            self._fault(outdata)
            return
        np.minimum(y, self.ceiling, out=out)  # the output clip, into our own buffer
        np.maximum(out, -self.ceiling, out=out)
        outdata[:] = out.T

    def _fault(self, outdata: np.ndarray) -> None:
        """A block whose output was not finite: silence, and the chain starts afresh."""
        self.faults += 1
        outdata.fill(0.0)
        self.reset()
