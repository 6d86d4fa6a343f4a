"""Delay lines and a feedback delay network (FDN), processed in sub-blocks of batched ops.

A feedback loop through delay lines of at least ``D`` samples lets ``D`` samples be computed
at once: every value read in a sub-block of ``S <= D`` samples was written before it began. So
a block is cut into sub-blocks no longer than the shortest delay, and each is a handful of
batched torch ops over all lines (no per-sample Python loop).

Delays in samples are Python floats set before each block (``set_delays``); they may move
linearly across a block (a ramp), read with linear interpolation; at rest, whole-sample delays
are read exactly.

A block is ``before_block(frames)`` on the host (ring positions, delays, crossfades), then
``run(x)``, kernels only. With ``capture``, ``run`` issues the same kernels with the same
arguments on every block (a CUDA graph can replay it): ring positions reach them through
``Control``s, and the work never depends on the settings (fixed sub-blocks, always the
interpolating read, always the crossfade).
"""
from __future__ import annotations

import numpy as np
import torch

from ..controls import Control


def hadamard(size: int) -> np.ndarray:
    """The orthonormal ``size x size`` Hadamard matrix (Sylvester; ``size`` a power of two)."""
    if size < 1 or size & (size - 1):
        raise ValueError(f"a Hadamard matrix needs a power-of-two size, got {size}")
    h = np.ones((1, 1))
    while h.shape[0] < size:
        h = np.block([[h, h], [h, -h]])
    return h / np.sqrt(size)


def primes_near(targets: np.ndarray) -> np.ndarray:
    """Distinct primes, each the smallest unused prime at or above its target (sorted input)."""
    top = int(2 * max(targets)) + 100
    sieve = np.ones(top, dtype=bool)
    sieve[:2] = False
    for n in range(2, int(top**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = False
    primes = np.flatnonzero(sieve)
    chosen: list[int] = []
    for target in targets:
        i = np.searchsorted(primes, target)
        while primes[i] in chosen:
            i += 1
        chosen.append(int(primes[i]))
    return np.array(chosen)


def as_float32(array: np.ndarray) -> torch.Tensor:
    """A CPU float32 tensor of ``array`` to ``copy_`` from (same dtype: no temporary tensor)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class DelayLines:
    """``rows`` delay lines in one ring buffer ``(rows, length)``, written and read in blocks.

    Time is an absolute sample index. ``before_block(frames)`` (host) opens a block at the
    write head ``t0`` and moves the head past it; ``write(x, start)`` stores the block's samples
    of times ``t0 + start`` onwards. A read at times ``t`` with delay ``d`` returns the samples of
    times ``t - d``, which must already be written. Kernels find the block in the ring from
    ``origin`` = ``t0 % length + length``: a Python int, or with ``capture`` a device tensor
    ``(1,)`` the host writes (then reads and writes are index ops on it, the same every block).
    Buffers are allocated here; reads and writes allocate nothing on the device.

    Args:
        rows: number of lines. max_delay: the longest delay in samples. max_block: the longest
            write or read. device: torch device. capture: keep the ring position on the device.
    """

    def __init__(self, rows: int, max_delay: float, max_block: int, device, capture: bool = False) -> None:
        self.length = L = int(np.ceil(max_delay)) + max_block + 2
        self.capture = capture
        f32 = dict(device=device, dtype=torch.float32)
        self.ring = torch.zeros(rows, L, **f32)
        self.head = self.t0 = 0
        self._origin = Control(1, device, torch.int64)  # capture: t0 % length + length
        self._steps = torch.arange(max_block, device=device)  # j
        self._ring_index = torch.empty(max_block, dtype=torch.long, device=device)
        self._offsets = self._steps.expand(rows, max_block)
        self._float_offsets = self._offsets.double()
        self._index = torch.empty(rows, max_block, dtype=torch.long, device=device)
        self._indices: dict[int, torch.Tensor] = {}  # views of _index by width, made on first use
        self._next = torch.empty_like(self._index)
        # Positions in float64: in float32, at the ring's ~1e4 samples, a read would land up to
        # ~1e-3 of a sample off (noise at about -60 dB of a bright signal, and a different
        # rounding on every device)
        self._position = torch.empty(rows, max_block, device=device, dtype=torch.float64)
        self._frac = torch.empty_like(self._position)
        self._weight = torch.empty(rows, max_block, **f32)
        self._other = torch.empty(rows, max_block, **f32)

    def before_block(self, frames: int) -> None:
        """Host side: the next block writes ``frames`` samples from the head on."""
        self.t0 = self.head
        self.head += frames
        if self.capture:
            self._origin.set(self.t0 % self.length + self.length)

    @property
    def origin(self) -> int | torch.Tensor:
        """``t0 % length + length``: the block's first sample in the ring (plus a lap)."""
        return self._origin.tensor if self.capture else self.t0 % self.length + self.length

    def write(self, x: torch.Tensor, start: int = 0) -> None:
        """Store ``x`` ``(rows, k)`` as the samples of times ``t0 + start`` onwards."""
        k = x.shape[-1]
        if self.capture:
            self.ring.index_copy_(1, self._index_from(self.origin, start, k), x)
            return
        begin = (self.t0 + start) % self.length
        first = min(k, self.length - begin)
        self.ring[:, begin : begin + first].copy_(x[:, :first])
        if first < k:
            self.ring[:, : k - first].copy_(x[:, first:])

    def _index_from(self, origin: int | torch.Tensor, start: int, k: int) -> torch.Tensor:
        """Ring indices ``(k,)`` of the ``k`` samples from ``origin + start`` on."""
        index = torch.add(self._steps[start : start + k], origin, out=self._ring_index[:k])
        return index.remainder_(self.length)

    def read_whole(self, delay: int, out: torch.Tensor) -> torch.Tensor:
        """Read the block's times with one whole-sample ``delay`` on every row into ``out``
        ``(rows, k)``; returns a view of the ring instead when the stretch does not wrap around
        (no copy). Not with ``capture`` (see ``read_at``)."""
        k = out.shape[-1]
        first = (self.t0 - delay) % self.length
        if first + k <= self.length:
            return self.ring[:, first : first + k]
        split = self.length - first
        out[:, :split].copy_(self.ring[:, first:])
        out[:, split:].copy_(self.ring[:, : k - split])
        return out

    def read_at(self, origin: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Read ``out.shape[-1]`` samples on every row into ``out`` ``(rows, k)``, from the ring
        index ``origin`` (a device tensor ``(1,)``, ``>= 0``) on: the same kernels whatever it holds."""
        return torch.index_select(self.ring, 1, self._index_from(origin, 0, out.shape[-1]), out=out)

    def read_fixed(self, t0: int, lags: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Read whole-sample delays: ``lags`` ``(rows, k)`` holds ``j - delay`` (long); ``out``
        ``(rows, k)`` receives sample ``t0 + j - delay`` of each row."""
        k = lags.shape[-1]
        index = self._indices.get(k)
        if index is None:  # slicing costs ~1 us: each width once
            index = self._indices[k] = self._index[:, :k]
        torch.add(lags, t0 % self.length + self.length, out=index).remainder_(self.length)
        return torch.gather(self.ring, 1, index, out=out)

    def read_moving(self, delays: torch.Tensor, out: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Read fractional delays ``delays`` ``(rows, k)`` (float64 samples, one per output sample,
        for the block's times from ``t0 + start`` on) by linear interpolation into ``out`` ``(rows, k)``."""
        k = delays.shape[-1]
        position = torch.sub(self._float_offsets[:, start : start + k], delays, out=self._position[:, :k])
        position.add_(self.origin)
        frac = torch.frac(position, out=self._frac[:, :k])
        index = self._index[:, :k]
        index.copy_(position.sub_(frac))
        index.remainder_(self.length)
        following = torch.add(index, 1, out=self._next[:, :k]).remainder_(self.length)
        torch.gather(self.ring, 1, index, out=out)
        other = torch.gather(self.ring, 1, following, out=self._other[:, :k])
        return out.lerp_(other, self._weight[:, :k].copy_(frac))

    def reset(self) -> None:
        self.ring.zero_()
        self.head = self.t0 = 0


class OnePoleBank:
    """``rows`` one-pole filters ``y[t] = scale r[t] + pole y[t-1]`` run on blocks by matmuls.

    A block is cut into chunks of ``K``: the zero-state response of every chunk comes from one
    batched matmul with the ``(K, K)`` Toeplitz matrix of ``scale pole^(j-k)``; the states
    entering the chunks, ``s_m = B^m y_prev + sum_{l<m} B^(m-1-l) e_l`` (``B = pole^K``,
    ``e_l`` chunk ``l``'s zero-state end), from a second with the Toeplitz matrix of ``B^(m-i)``
    applied to ``[y_prev, e_0, e_1, ...]``; then ``y[mK + j] += pole^(j+1) s_m``. The matrices
    stay small (a single ``(k, k)`` Toeplitz matrix for a 256-frame block cost 4x more).

    Use: read the block into ``input(k)``, then ``run(k)`` returns ``y`` ``(rows, k)``.
    """

    CHUNK = 32

    def __init__(self, rows: int, max_block: int, device) -> None:
        K, M = self.CHUNK, -(-max_block // self.CHUNK)
        self.rows, self.chunks = rows, M
        f32 = dict(device=device, dtype=torch.float32)
        self._input = torch.zeros(rows, M * K, **f32)  # zero-padded to whole chunks
        self._zero_state = torch.empty(rows * M * K, **f32)
        self._carry = torch.zeros(rows, M, **f32)  # [y_prev, chunk ends]
        self._states = torch.empty(rows * M, **f32)
        self._chunk_matrix = torch.zeros(rows, K, K, **f32)
        self._carry_matrix = torch.zeros(rows, M, M, **f32)
        self._decay = torch.zeros(rows, 1, K, **f32)  # pole^(j+1)
        self._views: dict[int, tuple] = {}  # the views a block of k frames uses, by k

    def set(self, scale: np.ndarray, pole: np.ndarray) -> None:
        """Coefficients per row (float64 ``(rows,)``; ``0 <= pole < 1``)."""
        K, M = self.CHUNK, self.chunks
        steps = np.arange(max(K, M) + 1)
        powers = pole[:, None] ** steps[None, : K + 1]
        lag = steps[None, :K] - steps[:K, None]  # j - k
        chunk = np.where(lag >= 0, scale[:, None, None] * powers[:, np.maximum(lag, 0)], 0.0)
        lag = steps[None, :M] - steps[:M, None]
        carry = np.where(lag >= 0, powers[:, K, None, None] ** np.maximum(lag, 0), 0.0)
        self._chunk_matrix.copy_(as_float32(chunk))
        self._carry_matrix.copy_(as_float32(carry))
        self._decay.copy_(as_float32(powers[:, None, 1:]))

    def input(self, k: int) -> torch.Tensor:
        """The ``(rows, k)`` buffer to fill with the next block."""
        return self._views_for(k)[0]

    def run(self, k: int) -> torch.Tensor:
        """Filter the ``k`` samples in ``input(k)``; returns a ``(rows, k)`` view."""
        _, padding, chunks, zero_state, ends, zero_ends, carry, carry_matrix, states, y, last = self._views_for(k)
        if padding is not None:
            padding.zero_()
        torch.bmm(chunks, self._chunk_matrix, out=zero_state)
        if ends is not None:
            ends.copy_(zero_ends)
        torch.bmm(carry, carry_matrix, out=states)
        zero_state.addcmul_(states.view(self.rows, -1, 1), self._decay)
        self._carry[:, 0].copy_(last)
        return y

    def _views_for(self, k: int) -> tuple:
        views = self._views.get(k)
        if views is None:
            K, rows = self.CHUNK, self.rows
            M = -(-k // K)
            zero_state = self._zero_state[: rows * M * K].view(rows, M, K)
            y = zero_state.view(rows, M * K)[:, :k]
            views = self._views[k] = (
                self._input[:, :k],
                self._input[:, k : M * K] if k < M * K else None,
                self._input[:, : M * K].view(rows, M, K),
                zero_state,
                self._carry[:, 1:M] if M > 1 else None,
                zero_state[:, : M - 1, K - 1],
                self._carry[:, None, :M],
                self._carry_matrix[:, :M, :M],
                self._states[: rows * M].view(rows, 1, M),
                y,
                y[:, k - 1],
            )
        return views

    def reset(self) -> None:
        self._carry.zero_()


class FeedbackDelayNetwork:
    """An FDN: ``lines`` delay lines, each followed by a one-pole low-pass with gain
    (``y[t] = c r[t] + b y[t-1]``), mixed by an orthogonal feedback matrix.

    Per sample, with ``r`` the lines' delayed outputs::

        y = onepole(r)                 (lines,)     damping and decay gain per line
        line inputs  = Q y + B x       Q: (lines, lines) feedback, B: (lines, channels) input
        output       = C y             C: (channels, lines)

    Args:
        feedback: ``(lines, lines)`` feedback matrix Q (orthogonal: lossless before the gains).
        inputs: ``(lines, channels)`` input matrix B.
        max_delay: the longest line delay in samples. max_block: the longest block.
        device: torch device.
        min_delay: the shortest line delay ``set_delays`` will get, in samples; with
            ``capture`` every block runs in sub-blocks of that many frames.
        capture: ``run`` issues the same kernels on every block (see the module docstring).

    ``set_delays``, ``set_filters`` and ``set_output`` take effect at the next block; call each
    once before the first. Per block: ``before_block(frames)`` on the host, then ``run(x)``.
    Single-threaded use; ``run`` allocates nothing on the device.
    """

    def __init__(self, feedback: np.ndarray, inputs: np.ndarray, max_delay: float,
                 max_block: int, device, min_delay: float = 1.0, capture: bool = False) -> None:
        lines, channels = inputs.shape
        self.lines = lines
        self.capture = capture
        self.device = torch.device(device)
        f32 = dict(device=self.device, dtype=torch.float32)
        self._feedback = torch.tensor(feedback, **f32)
        self._inputs = torch.tensor(inputs, **f32)
        self._outputs = torch.zeros(channels, lines, **f32)
        self._delay_lines = DelayLines(lines, max_delay, max_block, self.device, capture)
        # A block runs in sub-blocks no longer than the shortest delay (<= max_delay)
        self._damping = OnePoleBank(lines, min(max_block, int(np.ceil(max_delay))), self.device)
        self._capture_step = max(1, min(max_block, int(min_delay)))
        self._written = torch.empty(lines, max_block, **f32)
        self._out = torch.empty(channels, max_block, **f32)
        # views by block length k (built once: slicing costs ~1 us a view)
        self._writes = [self._written[:, :k] for k in range(max_block + 1)]
        self._outs = [self._out[:, :k] for k in range(max_block + 1)]
        f64 = dict(device=self.device, dtype=torch.float64)  # delays: see DelayLines._position
        self._steps = torch.arange(1, max_block + 1, **f64)
        self._ramp = Control((2, lines, 1), self.device, torch.float64)  # [delays at the block's start, change]
        self._delays = torch.empty(lines, max_block, **f64)
        self._lags = torch.empty(lines, max_block, dtype=torch.long, device=self.device)
        self._lags_of = [self._lags[:, :k] for k in range(max_block + 1)]
        self._fixed = None
        self._target = self._reached = None  # set_delays before the first block
        self._span = (None, None)  # the (start, end) delays the reads are set up for

    # -- settings (before a block) -------------------------------------------------------
    def set_delays(self, delays: list[float]) -> None:
        """Line delays in samples (>= ``min_delay``) at the end of the next block; they move
        linearly from where the last block left them (none before the first block after
        construction or ``reset``)."""
        self._target = list(delays)

    def set_filters(self, scale: np.ndarray, pole: np.ndarray) -> None:
        """Per-line one-pole ``y[t] = scale r[t] + pole y[t-1]`` (``0 <= pole < 1``)."""
        self._damping.set(scale, pole)

    def set_output(self, outputs: np.ndarray) -> None:
        """Output taps ``(channels, lines)``."""
        self._outputs.copy_(as_float32(outputs))

    # -- audio ---------------------------------------------------------------------------
    def before_block(self, frames: int) -> None:
        """Host side of the next block of ``frames``: the ring position, the delays and the
        sub-block length ``run`` uses."""
        self._delay_lines.before_block(frames)
        start, end = self._reached or self._target, self._target
        self._reached = end
        if (start, end) != self._span:  # the delays moved or were set: new reads
            self._set_reads(start, end)
        self._step = self._capture_step if self.capture else max(1, min(frames, self._shortest))

    def _set_reads(self, start: list[float], end: list[float]) -> None:
        """Set up the reads of a block whose delays move from ``start`` to ``end``."""
        self._span = (start, end)
        self._shortest = int(min(min(start), min(end)))
        self._moving = self.capture or start != end or any(d != int(d) for d in end)
        if self._moving:
            first = np.array(start, dtype=np.float64)
            self._ramp.values[0, :, 0] = first
            self._ramp.values[1, :, 0] = np.array(end) - first
            self._ramp.commit()
        elif self._fixed != end:
            self._lags.copy_(torch.from_numpy(-np.array(end, dtype=np.int64)[:, None]))
            self._lags.add_(self._delay_lines._offsets)
            self._fixed = end

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(channels, n)`` into the lines; returns the output ``(channels, n)``, a view
        into an internal buffer valid until the next call."""
        n, step = x.shape[-1], self._step
        if step >= n:
            self._sub_block(x, 0, n, self._outs[n])
        else:
            for start in range(0, n, step):
                k = min(step, n - start)
                self._sub_block(x[:, start : start + k], start, n, self._out[:, start : start + k])
        return self._outs[n]

    def _sub_block(self, x: torch.Tensor, start: int, n: int, out: torch.Tensor) -> torch.Tensor:
        k = x.shape[-1]
        lines = self._delay_lines
        read = self._damping.input(k)
        if not self._moving:
            lines.read_fixed(lines.t0 + start, self._lags_of[k], read)
        else:  # delay at sample j of the block: start + (end - start) (j + 1) / n
            ramp = self._ramp.tensor
            delays = torch.addcmul(ramp[0], ramp[1], self._steps[start : start + k], value=1.0 / n,
                                   out=self._delays[:, :k])
            lines.read_moving(delays, read, start)
        damped = self._damping.run(k)
        written = torch.mm(self._inputs, x, out=self._writes[k])
        lines.write(written.addmm_(self._feedback, damped), start)
        return torch.mm(self._outputs, damped, out=out)

    def reset(self) -> None:
        """Silence the lines and the filters' memories; keep delays and coefficients."""
        self._delay_lines.reset()
        self._damping.reset()
        self._reached = None
