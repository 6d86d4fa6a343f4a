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
the input gives the same output.

One-sample matrix (0-based stages; ``u_k`` the input of stage ``k``)::

    y_k  = a^(k+1) v + sum_{m<=k} a^(k-m) z_m,      u_k = y_(k-1),  u_0 = v
    z_k' = (1 - a^2) u_k - a z_k,                   p' = y = y_(N-1)
"""
from __future__ import annotations

import numpy as np
import torch


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
    """

    def __init__(self, stages: int, channels: int, max_block: int, step: int = 16, device="cpu") -> None:
        if step & (step - 1):
            raise ValueError(f"step must be a power of two, got {step}")
        self.stages, self.channels, self.step = stages, channels, step
        self.max_steps = -(-(max_block + step - 1) // step)
        states, batch = stages + 1, channels * self.max_steps
        kw = dict(device=torch.device(device), dtype=torch.float32)
        e, f, g = one_sample_pattern(stages)
        self._exponent, self._fixed, self._varying = e.to(**kw), f.to(**kw), g.to(**kw)
        self._one_minus_a2 = torch.empty(batch, 1, 1, **kw)
        self._factor = torch.empty(batch, states + 1, states + 1, **kw)
        sizes = [1 << i for i in range(step.bit_length())]
        self._matrices = {k: torch.zeros(batch, states + k, states + k, **kw) for k in sizes}
        self._inputs = torch.zeros(channels * self.max_steps * step, **kw)
        self._drive = torch.empty(batch, 1, states + step, **kw)
        self._starts = torch.zeros(self.max_steps + 1, channels, 1, states, **kw)
        self._from_state = torch.empty(batch * step, **kw)
        self._reverse = torch.arange(step - 1, -1, -1, device=kw["device"])
        self._outputs = torch.empty(channels * self.max_steps * step, **kw)
        self._pending = torch.zeros(channels, step, **kw)
        self.reset()

    def reset(self) -> None:
        self._starts[0].zero_()
        self._pending.zero_()
        self.offset = 0  # samples since the last step boundary (their inputs are pending)

    def steps_for(self, frames: int) -> int:
        """How many coefficient steps the next block of ``frames`` touches."""
        return -(-(self.offset + frames) // self.step)

    def _build(self, a: torch.Tensor, feedback: float) -> torch.Tensor:
        """``M_step`` for each coefficient in ``a`` ``(batch,)``: ``(batch, S + step, S + step)``."""
        batch, states = a.shape[0], self.stages + 1
        a = a.view(batch, 1, 1)
        one = self._matrices[1][:batch]
        torch.pow(a, self._exponent, out=one)
        t = torch.mul(a, a, out=self._one_minus_a2[:batch]).neg_().add_(1.0)
        factor = torch.mul(self._varying, t, out=self._factor[:batch]).add_(self._fixed)
        one.mul_(factor)
        one[:, self.stages].mul_(feedback)
        k = 1
        while k < self.step:
            small, big = self._matrices[k][:batch], self._matrices[2 * k][:batch]
            top = states + k
            torch.bmm(small[:, :, :states], small[:, :states, :], out=big[:, :top, :top])  # [AA, AC; BA, BC]
            big[:, :top, top:].copy_(small[:, :, states:])  # first half's outputs: [C; D]
            big[:, top:, :states].copy_(small[:, states:, :states])  # second half's inputs -> B
            big[:, top:, states:top].copy_(small[:, states:, states:])  # -> D
            k *= 2
        return self._matrices[self.step][:batch]

    def process(self, x: torch.Tensor, a: torch.Tensor, feedback: float, out: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` ``(channels, frames)`` into ``out`` ``(channels, frames)``.

        ``a``: ``(channels, steps_for(frames))`` coefficients, the first for the step holding
        the pending samples (or starting at this block when none are pending).
        """
        channels, frames = x.shape
        k, states, offset = self.step, self.stages + 1, self.offset
        total = offset + frames
        steps, whole = -(-total // k), total // k
        batch = channels * steps
        matrix = self._build(a.reshape(batch), feedback)
        inputs = self._inputs[: batch * k].view(channels, steps * k)
        inputs[:, :offset].copy_(self._pending[:, :offset])
        inputs[:, offset:total].copy_(x)
        inputs[:, total:].zero_()
        drive = torch.bmm(inputs.view(batch, 1, k), matrix[:, states:], out=self._drive[:batch])
        drive = drive.view(channels, steps, states + k)
        transitions = matrix.view(channels, steps, states + k, states + k)
        for j in range(steps):
            torch.baddbmm(drive[:, j, None, :states], self._starts[j], transitions[:, j, :states, :states],
                          out=self._starts[j + 1])
        starts = self._starts[:steps].transpose(0, 1)  # (channels, steps, 1, S)
        from_state = self._from_state[: batch * k].view(channels, steps, 1, k)
        torch.matmul(starts, transitions[:, :, :states, states:], out=from_state)
        reversed_out = from_state.view(channels, steps, k).add_(drive[..., states:])
        outputs = self._outputs[: batch * k].view(channels, steps, k)
        torch.index_select(reversed_out, 2, self._reverse, out=outputs)
        out.copy_(outputs.view(channels, -1)[:, offset:total])
        self._starts[0].copy_(self._starts[whole])
        self.offset = total - whole * k
        self._pending[:, : self.offset].copy_(inputs[:, whole * k : total])
        return out
