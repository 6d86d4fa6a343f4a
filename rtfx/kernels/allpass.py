"""A chain of first-order all-passes with a time-varying coefficient and output feedback.

Each stage (transposed direct form II, state ``z``)::

    y = a u + z            z' = u - a y            H(z) = (a + z^-1) / (1 + a z^-1)

``N`` stages share ``a``; the chain input is ``v = x + feedback * p`` with ``p`` the chain's
previous output. With ``t = tan(pi fc / fs)``, ``a = (t - 1) / (t + 1)`` puts each stage's
-90 degree point at ``fc``.

``a`` changes every ``step`` samples, at multiples of ``step`` in absolute sample time. Within
one step the system is linear and time-invariant with state ``s = [z_1..z_N, p]``, so a step
is one matrix: ``[s', y_rev] = [s, x] @ M`` where ``y_rev`` lists the step's outputs in
reverse time order. ``M`` is built for all steps of a block at once, from the one-sample
matrix ``M_1`` (entries ``c * a^e``, derived below) by doubling::

    M_k = [[A, C], [B, D]]   ->   M_2k = [[A A, A C, C], [B A, B C, D], [B, D, 0]]

(rows: state, first half's inputs, second half's inputs; columns: new state, second half's
outputs, first half's outputs, which keeps the outputs reversed at every level). The steps of
a block then run as one batched matmul for the inputs, a short loop over steps for the
states (one small matmul each), and one batched matmul for the states' outputs.

A block that ends inside a step keeps that step's inputs and its start state, and processes
the whole step again next block: outputs depend only on the past, so every partition of
the input gives the same output. Where the block falls in the steps is planned on the host
(``plan``); with ``capture`` the kernels move the samples by index tensors the host writes
(``Control``s) and always run all ``max_steps`` steps, so a CUDA graph can replay them.

One-sample matrix (0-based stages; ``u_k`` the input of stage ``k``)::

    y_k  = a^(k+1) v + sum_{m<=k} a^(k-m) z_m,      u_k = y_(k-1),  u_0 = v
    z_k' = (1 - a^2) u_k - a z_k,                   p' = y = y_(N-1)
"""
from __future__ import annotations

import numpy as np
import torch

from ..controls import Control


def allpass_coefficient(cutoff_hz, samplerate: float):
    """``a`` for a break (-90 degree) frequency ``cutoff_hz`` in Hz (float or numpy array)."""
    t = np.tan(np.pi * np.asarray(cutoff_hz, dtype=np.float64) / samplerate)
    return (t - 1) / (t + 1)


def one_sample_pattern(stages: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exponents ``E`` and factors ``F``, ``G`` with ``M_1 = a^E * (F + (1 - a^2) G)``
    (row ``N``, the feedback state, still to be multiplied by ``feedback``)."""
    n, size = stages, stages + 2  # rows/cols: z_0..z_(N-1), p, x / y
    e, f, g = (torch.zeros(size, size, dtype=torch.float64) for _ in range(3))
    for k in range(n):  # column z_k'
        for m in range(k):
            e[m, k], g[m, k] = k - 1 - m, 1.0
        e[k, k], f[k, k] = 1.0, -1.0
        e[n, k], g[n, k] = k, 1.0
        e[n + 1, k], g[n + 1, k] = k, 1.0
    for col in (n, n + 1):  # p' and y are both y_(N-1)
        for m in range(n):
            e[m, col], f[m, col] = n - 1 - m, 1.0
        e[n, col], f[n, col] = n, 1.0
        e[n + 1, col], f[n + 1, col] = n, 1.0
    return e, f, g


class AllpassChain:
    """``stages`` first-order all-passes with feedback, ``a`` per ``step`` samples.

    Args:
        stages: number of all-pass stages.
        channels: channels, each with its own state and coefficients.
        max_block: the longest block ``process`` gets.
        step: samples per coefficient update (a power of two).
        device: torch device.
        capture: every block runs the same kernels (the block's placement in index tensors).

    Per block: ``plan(frames)`` (host), then ``process`` (kernels).
    """

    def __init__(self, stages: int, channels: int, max_block: int, step: int = 16, device="cpu",
                 capture: bool = False) -> None:
        if step & (step - 1):
            raise ValueError(f"step must be a power of two, got {step}")
        self.stages, self.channels, self.step = stages, channels, step
        # Every block builds all ``max_steps`` matrices (fixed shapes; unused steps are cheap),
        # and every view the audio thread uses is made here: slicing costs ~1 us per view.
        self.max_steps = steps = -(-(max_block + step - 1) // step)
        states, batch, k = stages + 1, channels * steps, step
        kw = dict(device=torch.device(device), dtype=torch.float32)
        e, f, g = one_sample_pattern(stages)
        self._exponent, self._fixed, self._varying = e.to(**kw), f.to(**kw), g.to(**kw)
        self._one_minus_a2 = torch.empty(batch, 1, 1, **kw)
        self._factor = torch.empty(batch, states + 1, states + 1, **kw)
        self._one = torch.zeros(batch, states + 1, states + 1, **kw)
        self._feedback_row = self._one.view(channels, steps, states + 1, states + 1)[:, :, stages]
        self._levels = []
        small = self._one
        for size in (1 << i for i in range(step.bit_length() - 1)):
            top = states + size
            big = torch.zeros(batch, states + 2 * size, states + 2 * size, **kw)
            # bmm into a strided view is ~7x slower on CPU than into a contiguous buffer + copy.
            product = torch.empty(batch, top, top, **kw)
            self._levels.append((small[:, :, :states], small[:, :states, :], product, big[:, :top, :top],
                                 big[:, :top, top:], small[:, :, states:], big[:, top:, :top], small[:, states:, :]))
            small = big
        matrix = small.view(channels, steps, states + k, states + k)
        self._transitions = [matrix[:, j, :states, :states] for j in range(steps)]
        self._from_input = small[:, states:]
        self._inputs = torch.zeros(channels, steps * k, **kw)
        self._inputs_by_step = self._inputs.view(batch, 1, k)
        self._drive = torch.empty(batch, 1, states + k, **kw)
        drive = self._drive.view(channels, steps, states + k)
        self._drive_states = [drive[:, j, None, :states] for j in range(steps)]
        self._drive_outputs = drive[..., states:]
        self._starts = torch.zeros(steps + 1, channels, 1, states, **kw)
        self._starts_by_step = self._starts[:steps].transpose(0, 1)  # (channels, steps, 1, S)
        self._step_starts = torch.empty(batch, 1, states, **kw)  # the same, contiguous
        self._to_output = small[:, :states, states:]
        self._from_state = torch.empty(batch, 1, k, **kw)
        self._reversed = self._from_state.view(channels, steps, k)
        self._reverse = torch.arange(k - 1, -1, -1, device=kw["device"])
        self._outputs = torch.empty(channels, steps, k, **kw)
        self._pending = torch.zeros(channels, k, **kw)
        self.capture = capture
        if capture:
            long = dict(device=kw["device"], dtype=torch.long)
            self._sources = torch.zeros(channels, k + max_block + 1, **kw)  # [pending | block | 0]
            self._take_inputs = Control(steps * k, **long)  # columns of _sources, step by step
            self._take_outputs = Control(max_block, **long)  # the block's columns of the outputs
            self._take_pending = Control(k, **long)  # columns of the inputs left pending
            self._carry = Control(1, **long)  # the step whose start state the next block starts at
            self._carried = torch.empty(1, channels, 1, states, **kw)
        self.reset()

    def reset(self) -> None:
        self._starts[0].zero_()
        self._pending.zero_()
        self.offset = 0  # samples since the last step boundary (their inputs are pending)
        self._planned = None  # (offset, frames) the index controls hold

    def plan(self, frames: int) -> None:
        """Place the next block of ``frames`` after the pending samples. Host side."""
        k, first = self.step, self.offset
        self._first, self._total = first, first + frames
        self._whole = self._total // k  # steps the block completes
        self.offset = self._total - self._whole * k
        if self.capture and self._planned != (first, frames):
            self._write_indices(first, frames)

    def _write_indices(self, first: int, frames: int) -> None:
        """The index controls for a block of ``frames`` after ``first`` pending samples."""
        k, total, zero = self.step, self._total, self._sources.shape[1] - 1
        columns = np.arange(self.max_steps * k)
        block = np.where(columns < total, k + columns - first, zero)
        self._take_inputs.set(np.where(columns < first, columns, block))
        self._take_outputs.set(first + np.arange(self._take_outputs.shape[0]))
        self._take_pending.set(np.minimum(self._whole * k + np.arange(k), columns[-1]))
        self._carry.set(self._whole)
        self._planned = (first, frames)

    def _build(self, a: torch.Tensor, feedback: torch.Tensor | float) -> None:
        """``M_step`` for each coefficient of ``a`` ``(channels * max_steps, 1, 1)`` and
        ``feedback`` (a float, or a tensor of 1 or ``(max_steps, 1)`` elements)."""
        torch.pow(a, self._exponent, out=self._one)
        t = torch.mul(a, a, out=self._one_minus_a2).neg_().add_(1.0)
        self._one.mul_(torch.mul(self._varying, t, out=self._factor).add_(self._fixed))
        self._feedback_row.mul_(feedback)
        for left, right, product, top_left, top_right, outputs, bottom, inputs in self._levels:
            top_left.copy_(torch.bmm(left, right, out=product))  # [AA, AC; BA, BC]
            top_right.copy_(outputs)  # the first half's outputs: [C; D]
            bottom.copy_(inputs)  # the second half's inputs: [B, D]

    def process(self, x: torch.Tensor, a: torch.Tensor, feedback: torch.Tensor | float,
                out: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` ``(channels, frames)`` into ``out`` ``(channels, frames)``, as ``plan``ned.

        ``a``: ``(channels, max_steps)`` coefficients of consecutive steps, the first for the
        step holding the pending samples (or starting with this block when none are).
        ``feedback``: a float, a 1-element tensor, or ``(max_steps, 1)``: per step, like ``a``.
        """
        self._build(a.view(-1, 1, 1), feedback)
        self._load(x)
        torch.bmm(self._inputs_by_step, self._from_input, out=self._drive)
        starts = self._starts
        for j in range(self.max_steps if self.capture else -(-self._total // self.step)):
            torch.baddbmm(self._drive_states[j], starts[j], self._transitions[j], out=starts[j + 1])
        self._step_starts.view(self._starts_by_step.shape).copy_(self._starts_by_step)
        torch.bmm(self._step_starts, self._to_output, out=self._from_state)
        reversed_out = self._reversed.add_(self._drive_outputs)
        torch.index_select(reversed_out, 2, self._reverse, out=self._outputs)
        return self._store(out)

    def _load(self, x: torch.Tensor) -> None:
        """The steps' inputs: the pending samples, then ``x``, then zeros."""
        inputs, first, total = self._inputs, self._first, self._total
        if self.capture:
            k = self.step
            self._sources[:, :k].copy_(self._pending)
            self._sources[:, k : k + x.shape[-1]].copy_(x)
            torch.index_select(self._sources, 1, self._take_inputs.tensor, out=inputs)
            return
        inputs[:, :first].copy_(self._pending[:, :first])
        inputs[:, first:total].copy_(x)
        inputs[:, total:].zero_()

    def _store(self, out: torch.Tensor) -> torch.Tensor:
        """The block's outputs into ``out``; keep the next block's start state and pending inputs."""
        outputs, starts = self._outputs.view(self.channels, -1), self._starts
        if self.capture:
            torch.index_select(outputs, 1, self._take_outputs.tensor[: out.shape[-1]], out=out)
            starts[0].copy_(torch.index_select(starts, 0, self._carry.tensor, out=self._carried)[0])
            torch.index_select(self._inputs, 1, self._take_pending.tensor, out=self._pending)
            return out
        out.copy_(outputs[:, self._first : self._total])
        whole = self._whole * self.step
        starts[0].copy_(starts[self._whole])
        self._pending[:, : self.offset].copy_(self._inputs[:, whole : self._total])
        return out
