"""The whole chain as one CUDA graph per block.

Per block: the host side of every effect (``before_block``: parameter ramps, coefficient
designs, ring positions) writes its controls into one host buffer together with the input
block, staged into pinned memory; then one graph replay copies all of it to the device, runs
every kernel of the chain and the output guard, and copies the output back to pinned memory.
With Triton the first and the last kernel read and write the pinned buffers themselves
(``kernels/fused_io.py``); without it the copies are copy nodes of the graph. Changing a
parameter never re-captures. A live stream announces its next block (``run(frames, ahead=)``):
the host side of that block then runs while the GPU works on this one. A chain whose structure
changes is a new ``GraphRunner`` (built off the audio thread).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from ..controls import Control, ControlBank, find_controls
from ..effect import Effect
from ..kernels import fused, fused_io
from ..spec import ProcessSpec

#: Blocks run eagerly before the capture (lazily built matrices, cuFFT plans, allocator pools).
WARM_UP_BLOCKS = 3


class NotCapturable(RuntimeError):
    """The chain holds an effect that cannot be captured in a CUDA graph (the message says which)."""


def capture_problems(chain: Effect) -> list[str]:
    """``"<effect>: <why>"`` for every stage that cannot be captured (empty when all can)."""
    return chain.capture_problems()


class GraphRunner:
    """Runs ``chain`` on CUDA from one captured graph per block, output guard included.

    Blocks go in and come out interleaved ``(frames, channels)``, as PortAudio hands them
    over. On the device, before the chain: to ``(channels, frames)``, NaN/Inf -> 0; after it:
    clipped to ``+-ceiling``, plus one row of per-channel sums of the unclipped output, which
    is finite exactly when every sample is (or when the sum overflows float32, which only a
    runaway chain reaches).

    Args:
        chain: the effect to run; prepared here with ``spec`` (``capture`` set).
        spec: a CUDA spec. Blocks of ``spec.blocksize`` frames replay the graph; shorter ones
            (the end of a file) run the same kernels eagerly.
        ceiling: output limit, linear full scale.
    Raises:
        NotCapturable: naming every effect that cannot be captured and why.
    """

    def __init__(self, chain: Effect, spec: ProcessSpec, ceiling: float = 1.0) -> None:
        if spec.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, got {spec.device}")
        problems = capture_problems(chain)
        if problems:
            raise NotCapturable("cannot capture the chain in a CUDA graph: " + "; ".join(problems))
        self.spec = spec = replace(spec, capture=True)
        self.ceiling = ceiling
        # Its own stream: a runner being built (warm-up, capture) on another thread never
        # queues work in front of the one playing.
        self.stream = torch.cuda.Stream(spec.device)
        with torch.cuda.stream(self.stream):
            self.chain = chain.prepare(spec)
            self.input = Control((spec.blocksize, spec.channels), spec.device)
            self.bank = ControlBank(find_controls(chain) + [self.input], spec.device)
            self._pinned_input = self.bank.view(self.bank.pinned, self.input)
            self._ready = None  # frames of the block whose controls the host has written ahead
            self._planar = torch.zeros(spec.channels, spec.blocksize, device=spec.device)
            # With Triton, one kernel reads the pinned bank and one writes the pinned output:
            # no copy-engine transfers, three kernels fewer.
            self._direct = fused.available(spec.device)
            # Rows: the output frames, then the row of per-channel sums (the finite check).
            self.output = torch.zeros(spec.blocksize + 1, spec.channels, pin_memory=True)
            self._output = self.output.numpy()
            self._guarded = None if self._direct else torch.zeros_like(self.output, device=spec.device)
            for _ in range(WARM_UP_BLOCKS):
                self._eager(spec.blocksize)
            self.chain.reset()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=self.stream, capture_error_mode="thread_local"):
                self._kernels(spec.blocksize)  # the copy in, the kernels and the copy out: one replay
        self.stream.synchronize()

    def _kernels(self, frames: int) -> None:
        """The device side of a block of ``frames``, from the pinned bank to ``output``."""
        x = self._planar[:, :frames]
        if self._direct:
            fused_io.arrive(self.bank.pinned, self.bank.device, self._pinned_input[:frames], x)
        else:
            self.bank.upload()
            torch.nan_to_num(self.input.tensor[:frames].t(), nan=0.0, posinf=0.0, neginf=0.0, out=x)
        y = self.chain.run_block(x)
        if self._direct:
            fused_io.depart(y, self.ceiling, self.output[: frames + 1])
            return
        guarded = self._guarded[: frames + 1]
        torch.clamp(y.t(), -self.ceiling, self.ceiling, out=guarded[:frames])
        torch.sum(y, dim=1, out=guarded[frames])  # three guard kernels in all
        self.output[: frames + 1].copy_(guarded, non_blocking=True)

    def _eager(self, frames: int) -> None:
        self.chain.before_block(frames)
        self.bank.stage()
        self._kernels(frames)

    @property
    def inputs(self) -> np.ndarray:
        """Where the next block's input goes: ``(blocksize, channels)`` float32 numpy view of
        the control bank's host buffer (write ``[:frames]``, then ``run(frames)``)."""
        return self.input.values

    def run(self, frames: int, ahead: int | None = None) -> tuple[np.ndarray, bool]:
        """Process the ``frames`` written to ``inputs``. Returns the guarded output
        ``(frames, channels)`` (a view of pinned memory, valid until the next call) and
        whether the chain's output was finite (if not, play silence and ``reset``).

        A full block is one graph replay: the copy of the controls and the input to the device,
        every kernel of the chain and the guard, the copy back. A shorter block (the end of a
        file) runs the same kernels eagerly.

        ``ahead``: the frames of the next block, announced. Then the host side of the next
        block (``before_block``: ramps, designs, ring positions) runs while the GPU works on
        this one, and its parameters are read one block earlier than without. The next call
        must be for ``ahead`` frames; for another count the host side runs once more (ring
        positions skip ``ahead`` frames: a click, never an error).

        The calling thread's current CUDA stream becomes the runner's (and stays so).
        """
        # The calling thread's current stream stays the runner's: entering and leaving a stream
        # context each block cost ~7 us on the GPU machine (H200, 2026-11-27).
        torch.cuda.set_stream(self.stream)
        if self._ready != frames:
            self.chain.before_block(frames)
        self.bank.stage()
        if frames == self.spec.blocksize:
            self.graph.replay()
        else:
            self._kernels(frames)
        self._ready = ahead
        if ahead:
            self.chain.before_block(ahead)
        self.stream.synchronize()
        return self._output[:frames], all(map(math.isfinite, self._output[frames].tolist()))

    def reset(self) -> None:
        """Clear the chain's state (filters, delay lines); the graph stays. Controls written
        ahead are dropped (the next block writes its own)."""
        with torch.cuda.stream(self.stream):
            self.chain.reset()
        self._ready = None
        self.stream.synchronize()
