"""The whole chain as one CUDA graph per block.

Per block: the host side of every effect (``before_block``: parameter ramps, coefficient
designs, ring positions) writes its controls into one pinned buffer together with the input
block; one host-to-device copy moves all of it; one graph replay runs every kernel of the
chain; one device-to-host copy brings the output back. Changing a parameter never re-captures.
A chain whose structure changes is a new ``GraphRunner`` (built off the audio thread).
"""
from __future__ import annotations

from dataclasses import replace

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
        self.chain = chain.prepare(spec)
        self.input = Control((spec.channels, spec.blocksize), spec.device)
        self.bank = ControlBank(find_controls(chain) + [self.input], spec.device)
        self.graph = torch.cuda.CUDAGraph()
        self._capture()

    def _capture(self) -> None:
        side = torch.cuda.Stream(self.spec.device)
        side.wait_stream(torch.cuda.current_stream(self.spec.device))
        with torch.cuda.stream(side):
            for _ in range(WARM_UP_BLOCKS):
                self._eager(self.spec.blocksize)
        torch.cuda.current_stream(self.spec.device).wait_stream(side)
        torch.cuda.synchronize(self.spec.device)
        self.chain.reset()
        with torch.cuda.graph(self.graph):
            self.output = self.chain.run_block(self.input.tensor)
        torch.cuda.synchronize(self.spec.device)

    def _eager(self, frames: int) -> torch.Tensor:
        self.chain.before_block(frames)
        self.bank.upload()
        return self.chain.run_block(self.input.tensor[:, :frames])

    def process(self, block: torch.Tensor) -> torch.Tensor:
        """Process ``block`` ``(channels, frames)`` float32 on the host (pinned for speed).

        Returns the output on the device, a view valid until the next call. Not synchronized:
        copy it to the host (``copy_``), which waits for it.
        """
        frames = block.shape[-1]
        self.input.host[:, :frames].copy_(block)
        if frames != self.spec.blocksize:
            return self._eager(frames)
        self.chain.before_block(frames)
        self.bank.upload()
        self.graph.replay()
        return self.output

    def reset(self) -> None:
        """Clear the chain's state (filters, delay lines); the graph stays."""
        self.chain.reset()
