"""Delay lines and a feedback delay network (FDN), processed in sub-blocks of batched ops.

A feedback loop through delay lines of at least ``D`` samples lets ``D`` samples be computed
at once: every value read in a sub-block of ``S <= D`` samples was written before it began. So
a block is cut into sub-blocks no longer than the shortest delay, and each is a handful of
batched torch ops over all lines (no per-sample Python loop).

Delays in samples are Python floats set before each call (``set_delays``); they may move
linearly across a call (a ramp), read with linear interpolation; at rest, whole-sample delays
are read exactly.
"""
from __future__ import annotations

import numpy as np
import torch


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


class DelayLines:
    """``rows`` delay lines in one ring buffer ``(rows, length)``, written and read in blocks.

    Time is an absolute sample index: ``write`` appends the samples of times ``head`` onwards;
    a read at times ``t0 ... t0 + k - 1`` with delay ``d`` returns the samples of times
    ``t - d``, which must already be written. Buffers are allocated here; reads and writes
    allocate nothing on the device.

    Args:
        rows: number of lines. max_delay: the longest delay in samples. max_block: the longest
            write or read. device: torch device.
    """

    def __init__(self, rows: int, max_delay: float, max_block: int, device) -> None:
        self.length = L = int(np.ceil(max_delay)) + max_block + 2
        f32 = dict(device=device, dtype=torch.float32)
        self.ring = torch.zeros(rows, L, **f32)
        self.head = 0
        self._offsets = torch.arange(max_block, device=device).expand(rows, max_block)  # j
        self._index = torch.empty(rows, max_block, dtype=torch.long, device=device)
        self._next = torch.empty_like(self._index)
        self._position = torch.empty(rows, max_block, **f32)
        self._frac = torch.empty(rows, max_block, **f32)
        self._other = torch.empty(rows, max_block, **f32)

    def write(self, x: torch.Tensor) -> None:
        """Append ``x`` ``(rows, k)`` at the write head."""
        k, start = x.shape[-1], self.head % self.length
        first = min(k, self.length - start)
        self.ring[:, start : start + first].copy_(x[:, :first])
        if first < k:
            self.ring[:, : k - first].copy_(x[:, first:])
        self.head += k

    def read_fixed(self, t0: int, lags: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Read whole-sample delays: ``lags`` ``(rows, k)`` holds ``j - delay`` (long); ``out``
        ``(rows, k)`` receives sample ``t0 + j - delay`` of each row."""
        k = lags.shape[-1]
        index = torch.add(lags, t0 % self.length + self.length, out=self._index[:, :k])
        index.remainder_(self.length)
        return torch.gather(self.ring, 1, index, out=out)

    def read_moving(self, t0: int, delays: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Read fractional delays ``delays`` ``(rows, k)`` (samples, one per output sample) by
        linear interpolation into ``out`` ``(rows, k)``."""
        k = delays.shape[-1]
        position = torch.sub(self._offsets[:, :k], delays, out=self._position[:, :k])
        position.add_(t0 % self.length + self.length)
        frac = torch.frac(position, out=self._frac[:, :k])
        index = self._index[:, :k]
        index.copy_(position.sub_(frac))
        index.remainder_(self.length)
        following = torch.add(index, 1, out=self._next[:, :k]).remainder_(self.length)
        torch.gather(self.ring, 1, index, out=out)
        other = torch.gather(self.ring, 1, following, out=self._other[:, :k])
        return out.lerp_(other, frac)

    def reset(self) -> None:
        self.ring.zero_()
        self.head = 0


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
        max_delay: the longest line delay in samples. max_block: the longest ``process``
            call. device: torch device.

    ``set_delays``, ``set_filters`` and ``set_output`` take effect at the next ``process``.
    Single-threaded use; ``process`` allocates nothing on the device.
    """

    def __init__(self, feedback: np.ndarray, inputs: np.ndarray, max_delay: float,
                 max_block: int, device) -> None:
        lines, channels = inputs.shape
        self.lines, self.max_block = lines, max_block
        self.device = torch.device(device)
        f32 = dict(device=self.device, dtype=torch.float32)
        self._feedback = torch.tensor(feedback, **f32)
        self._inputs = torch.tensor(inputs, **f32)
        self._outputs = torch.zeros(channels, lines, **f32)
        self._delay_lines = DelayLines(lines, max_delay, max_block, self.device)
        # [y_prev | r]: the one-pole's state then the block read from the lines
        self._held = torch.zeros(lines, max_block + 1, **f32)
        self._damped = torch.empty(lines * max_block, **f32)
        self._written = torch.empty(lines, max_block, **f32)
        self._out = torch.empty(channels, max_block, **f32)
        # one-pole as a matrix: y[j] = b^(j+1) y_prev + sum_{k<=j} c b^(j-k) r[k]
        self._pole = torch.zeros(lines, 1, **f32)
        self._scale = torch.zeros(lines, 1, 1, **f32)
        self._powers = torch.zeros(lines, max_block + 2, **f32)  # b^0 .. b^max_block, then 0
        exponents = torch.arange(max_block + 1, **f32)
        self._exponents = exponents
        lag = torch.arange(max_block)[None, :] - torch.arange(max_block)[:, None]  # j - k
        self._lag = torch.where(lag >= 0, lag, max_block + 1).to(self.device)
        self._matrix = torch.zeros(lines, max_block + 1, max_block, **f32)
        self._matrix_size = 0  # sizes up to this are built for the current filters
        self._steps = torch.arange(1, max_block + 1, **f32)
        self._delay_start = torch.zeros(lines, 1, **f32)
        self._delay_slope = torch.zeros(lines, 1, **f32)
        self._delays = torch.empty(lines, max_block, **f32)
        self._lags = torch.empty(lines, max_block, dtype=torch.long, device=self.device)
        self._fixed = self._moving = None
        self.set_delays([1.0] * lines, [1.0] * lines)

    # -- settings (before a call) --------------------------------------------------------
    def set_delays(self, start: list[float], end: list[float]) -> None:
        """Delays in samples at the start and end of the next call (each >= 1)."""
        self._shortest = int(min(min(start), min(end)))
        if start == end and all(d == int(d) for d in end):
            if self._fixed != end:
                lags = self._delay_lines._offsets - torch.tensor(end, device=self.device).long()[:, None]
                self._lags.copy_(lags)
                self._fixed = list(end)
            self._moving = None
        else:
            self._delay_start.copy_(torch.tensor(start, dtype=torch.float64)[:, None])
            self._delay_slope.copy_(torch.tensor(end, dtype=torch.float64)[:, None]
                                    - self._delay_start.double())
            self._moving, self._fixed = (start, end), None

    def set_filters(self, scale: np.ndarray, pole: np.ndarray) -> None:
        """Per-line one-pole ``y[t] = scale r[t] + pole y[t-1]`` (``0 <= pole < 1``)."""
        self._scale.copy_(torch.from_numpy(scale)[:, None, None])
        self._pole.copy_(torch.from_numpy(pole)[:, None])
        self._matrix_size = 0

    def set_output(self, outputs: np.ndarray) -> None:
        """Output taps ``(channels, lines)``."""
        self._outputs.copy_(torch.from_numpy(outputs))

    # -- audio ---------------------------------------------------------------------------
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(channels, n)`` into the lines; returns the output ``(channels, n)``, a view
        into an internal buffer valid until the next call."""
        n = x.shape[-1]
        step = max(1, min(n, self._shortest))
        self._build_matrix(min(step, n))
        for start in range(0, n, step):
            k = min(step, n - start)
            self._sub_block(x[:, start : start + k], start, n, self._out[:, start : start + k])
        return self._out[:, :n]

    def _sub_block(self, x: torch.Tensor, start: int, n: int, out: torch.Tensor) -> None:
        k = x.shape[-1]
        lines, t0 = self._delay_lines, self._delay_lines.head
        read = self._held[:, 1 : k + 1]
        if self._moving is None:
            lines.read_fixed(t0, self._lags[:, :k], read)
        else:  # delay at sample j of the call: start + (end - start) (j + 1) / n
            delays = torch.addcmul(self._delay_start, self._delay_slope, self._steps[start : start + k],
                                   value=1.0 / n, out=self._delays[:, :k])
            lines.read_moving(t0, delays, read)
        damped = self._damped[: self.lines * k].view(self.lines, 1, k)
        torch.bmm(self._held[:, None, : k + 1], self._matrix[:, : k + 1, :k], out=damped)
        damped = damped.view(self.lines, k)
        self._held[:, 0].copy_(damped[:, -1])
        written = torch.mm(self._inputs, x, out=self._written[:, :k])
        lines.write(written.addmm_(self._feedback, damped))
        torch.mm(self._outputs, damped, out=out)

    def _build_matrix(self, size: int) -> None:
        """The one-pole's ``(lines, size + 1, size)`` matrix on ``[y_prev, r]``, if not built."""
        if size <= self._matrix_size:
            return
        powers = self._powers[:, : size + 1]
        torch.pow(self._pole, self._exponents[: size + 1], out=powers)
        self._matrix[:, 0, :size].copy_(self._powers[:, 1 : size + 1])
        toeplitz = self._powers[:, self._lag[:size, :size]]
        torch.mul(toeplitz, self._scale, out=self._matrix[:, 1 : size + 1, :size])
        self._matrix_size = size

    def reset(self) -> None:
        """Silence the lines and the filters' memories; keep delays and coefficients."""
        self._delay_lines.reset()
        self._held.zero_()


class PreDelay:
    """A delay of the same (possibly moving) length on every channel; see ``DelayLines``.

    Args:
        channels: rows of the blocks. max_delay: the longest delay in samples. max_block:
            the longest block. device: torch device.
    """

    def __init__(self, channels: int, max_delay: float, max_block: int, device) -> None:
        self._lines = DelayLines(channels, max_delay, max_block, device)
        f32 = dict(device=device, dtype=torch.float32)
        self._out = torch.empty(channels, max_block, **f32)
        self._lags = torch.empty(channels, max_block, dtype=torch.long, device=device)
        self._delays = torch.empty(channels, max_block, **f32)
        self._steps = torch.arange(1, max_block + 1, **f32)
        self._start = self._end = self._fixed = None

    def set_delay(self, start: float, end: float) -> None:
        """Delay in samples (>= 0) at the start and at the end of the next block."""
        if start == end == int(end) and self._fixed != end:
            self._lags.copy_(self._lines._offsets - int(end))
            self._fixed = end
        self._start, self._end = start, end

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(channels, n)`` delayed; a view into an internal buffer."""
        n = x.shape[-1]
        self._lines.write(x)
        t0, out = self._lines.head - n, self._out[:, :n]
        if self._start == self._end == int(self._end):
            return self._lines.read_fixed(t0, self._lags[:, :n], out)
        steps = self._steps[:n].expand(out.shape)
        delays = torch.mul(steps, (self._end - self._start) / n, out=self._delays[:, :n])
        return self._lines.read_moving(t0, delays.add_(self._start), out)

    def reset(self) -> None:
        self._lines.reset()
