"""The whole chain as one CUDA graph per block.

Per block: the host side of every effect (``before_block``: parameter ramps, coefficient
designs, ring positions) writes its controls into one pinned buffer together with the input
block; then one graph replay copies all of it to the device, runs every kernel of the chain
and copies the output back to pinned memory (the copies are nodes of the graph). Changing a parameter never re-captures.
A chain whose structure changes is a new ``GraphRunner`` (built off the audio thread).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..controls import Control, ControlBank, find_controls
from ..effect import Effect
from ..spec import ProcessSpec

#: Blocks run eagerly before the capture (lazily built matrices, cuFFT plans, allocator pools).
WARM_UP_BLOCKS = 3


class NotCapturable(RuntimeError):
    """The chain holds an effect that cannot be captured in a CUDA graph (the message says which)."""


def capture_problems(chain: Effect) -> list[str]:
    """``"<effect>: <why>"`` for every stage that cannot be captured (empty when all can)."""
    return chain.capture_problems()


class GraphRunner:
    """Runs ``chain`` on CUDA from one captured graph per block.

    Args:
        chain: the effect to run; prepared here with ``spec`` (``capture`` set).
        spec: a CUDA spec. Blocks of ``spec.blocksize`` frames replay the graph; shorter ones
            (the end of a file) run the same kernels eagerly.
    Raises:
        NotCapturable: naming every effect that cannot be captured and why.
    """

    def __init__(self, chain: Effect, spec: ProcessSpec) -> None:
        if spec.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, got {spec.device}")
        problems = capture_problems(chain)
        if problems:
            raise NotCapturable("cannot capture the chain in a CUDA graph: " + "; ".join(problems))
        self.spec = spec = replace(spec, capture=True)
        # Its own stream: a runner being built (warm-up, capture) on another thread never
        # queues work in front of the one playing.
        self.stream = torch.cuda.Stream(spec.device)
        with torch.cuda.stream(self.stream):
            self.chain = chain.prepare(spec)
            self.input = Control((spec.channels, spec.blocksize), spec.device)
            self.bank = ControlBank(find_controls(chain) + [self.input], spec.device)
            self.output = torch.zeros(spec.channels, spec.blocksize, pin_memory=True)
            for _ in range(WARM_UP_BLOCKS):
                self._eager(spec.blocksize)
            self.chain.reset()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=self.stream, capture_error_mode="thread_local"):
                self.bank.upload()  # the copy in, the kernels and the copy out: one replay
                self.output.copy_(self.chain.run_block(self.input.tensor), non_blocking=True)
        self.stream.synchronize()

    def _eager(self, frames: int) -> None:
        self.chain.before_block(frames)
        self.bank.upload()
        self.output[:, :frames].copy_(self.chain.run_block(self.input.tensor[:, :frames]), non_blocking=True)

    @property
    def inputs(self) -> np.ndarray:
        """Where the next block's input goes: ``(channels, blocksize)`` float32 numpy view of
        pinned memory (write ``[:, :frames]``, then ``run(frames)``)."""
        return self.input.values

    def run(self, frames: int) -> torch.Tensor:
        """Process the ``frames`` written to ``inputs``; returns the output, ``(channels,
        frames)`` in pinned host memory, valid until the next call.

        A full block is one graph replay: the copy of the controls and the input to the device,
        every kernel of the chain, the copy back. A shorter block (the end of a file) runs the
        same kernels eagerly.
        """
        with torch.cuda.stream(self.stream):
            if frames == self.spec.blocksize:
                self.chain.before_block(frames)
                self.graph.replay()
            else:
                self._eager(frames)
        self.stream.synchronize()
        return self.output[:, :frames]

    def reset(self) -> None:
        """Clear the chain's state (filters, delay lines); the graph stays."""
        with torch.cuda.stream(self.stream):
            self.chain.reset()
        self.stream.synchronize()
