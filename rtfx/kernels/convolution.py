"""Zero-latency partitioned convolution (long FIR, cabinet and reverb IRs) and the kernel picker.

Every convolver here splits the IR into a *head* of ``G`` taps, computed in the time domain on
every call from the input history (``fir.DirectCore``), and FFT *segments* (``upols.Segment``)
laid out by ``nonuniform``. Every ``G`` input samples (a *tick*) the segments due do their share
of work. The first segment (partitions of ``G``) computes, at the tick that completes an input
block, its whole contribution to the next ``G`` outputs: the *tail*. Later segments add theirs
into an output ring ahead of time, and each tick folds the ring's next ``G`` samples into the
tail. A call is cut at tick boundaries and each piece is one GEMM, ``out = tail + W @ M`` (the
head). So the output never waits for a block to fill (no added latency), and calls may have any
length ``1..max_block``.

- ``PartitionedConvolver``: the uniform layout: head, then partitions of ``G`` taps, FFT size
  ``2G``, all computed at the tick (UPOLS with a frequency-domain delay line). Fixed shapes and
  few ops per tick: the layout for CUDA.
- ``NonUniformConvolver``: small partitions first, larger later (up to ``128 G``), the larger
  ones' work spread over the ticks until their output is due. On CPU it costs a small fraction
  of the uniform layout for long IRs (10 s IR, 64 frames: ~45 us instead of ~1.7 ms per
  block), with a bounded worst tick.
- ``CaptureConvolver``: the uniform layout for a CUDA graph (``spec.capture``): partitions of
  the block size, every tick the same kernels with the same arguments (the delay line's slot
  and the tick's offsets in a device tensor), one batched product over all partitions; for
  long IRs on many channels the far taps in larger partitions, spread over the ticks (``far``).
- ``make_convolver``: picks ``DirectFIR``, uniform or non-uniform from a cost model (in
  capture mode ``DirectFIR`` or ``CaptureConvolver``).

Buffers are allocated in ``__init__``; ``process`` works in place on them (``out=``, in-place
ops, cached views) and never synchronises with the device. The one exception is on CPU, where
FFTs of 4096 points and more go through ``scipy.fft``, which returns a fresh array.
"""
from __future__ import annotations

import numpy as np
import torch

from ..controls import Control
from . import fused, fused_convolver
from . import nonuniform as nu
from .fused_fir import FusedFIR
from .fir import DirectCore, DirectFIR, InputHistory, ShiftedHistory, as_taps, check_block, check_max_block
from .far import FarSegment, far_ratio
from .upols import RingSegment, Segment


class _Partitioned:
    """Head + segments engine shared by the uniform and non-uniform convolvers.

    The first segment (partitions of ``G``, computed whole at every tick) hands its result for
    the next ``G`` outputs over as ``_tail``; later segments add theirs into ``_ring`` ahead of
    time, and each tick folds the ring's next ``G`` samples into ``_tail``. A call is cut at
    tick boundaries; each piece is one GEMM, ``out = tail + window @ M`` (the head).
    """

    def __init__(self, taps, channels: int, max_block: int, device, partition, layout) -> None:
        h = as_taps(taps, channels)
        self.channels = C = int(channels)
        self.max_block = check_max_block(max_block)
        self.device = torch.device(device)
        self.num_taps = T = h.shape[1]
        G = default_partition(self.max_block, device) if partition is None else partition
        if int(G) != G or G < 1:
            raise ValueError(f"partition must be a whole number of taps >= 1, got {partition}")
        self.partition = G = int(min(G, T))
        segs = layout(T, G, C)
        self.layout = segs
        self._head = DirectCore(h[:, :G], C, self.max_block, self.device)
        top = max([s.size for s in segs] + [G])
        base = nu.head_us(G, G, C) + sum(nu.segment_us(s.size, s.count, 1, C)
                                         for s in segs if s.ratio == 1)
        units = nu.spread(segs, C, base)
        self._segs = [Segment(h, s, C, u, self.device) for s, u in zip(segs, units)]
        self._hist = InputHistory(C, max(3 * top, G - 1), self.max_block, self.device)
        self._out = torch.zeros(C, self.max_block, device=self.device)
        self._outs = [self._out[:, :n] for n in range(self.max_block + 1)]
        self._zero_tail = torch.zeros(C, G, device=self.device)
        self._tail = self._zero_tail
        # ring for the later segments: written up to 2 * top ahead of the tick, read at ticks
        later = self._segs[1:]
        self._ring_len = top * -(-(2 * top + G) // top) if later else 0
        self._ring = torch.zeros(C, self._ring_len, device=self.device)
        self._ring_g = [self._ring[:, i:i + G] for i in range(0, self._ring_len, G)]
        self._period = max([s.ratio for s in segs] + [1])
        self._plan = self._tick_plan(later)
        self._pos = 0

    def _tick_plan(self, later):
        """Per tick phase (mod the longest period): ``(segment, kind, lo, hi, result offset,
        ring blocks)``; a unit at offset ``R`` runs at the next period's tick 0 for result
        ``m - 1``, before that tick's units of result ``m``."""
        plan = [[] for _ in range(self._period)]
        for seg in later:
            Q = seg.Q
            blocks = [self._ring[:, i:i + Q] for i in range(0, self._ring_len, Q)]
            for phase in range(self._period):
                i = phase % seg.R
                for off, at in ((-1, i + seg.R), (0, i)):
                    plan[phase] += [(seg, u[0], u[1], u[2], off, blocks)
                                    for u in seg.units if u[3] == at]
        return plan

    def _tick(self, t: int, end: int) -> None:
        """Work of tick ``t`` (input complete up to sample ``t G``); ``end``: newest input + 1."""
        hist, G = self._hist, self.partition
        for seg, kind, lo, hi, off, blocks in self._plan[t % self._period]:
            Q = seg.Q
            m = t // seg.R - 1 + off
            if kind == "mac":
                seg.mac(lo, hi, m)
            elif kind == "fft":
                seg.fft(hist.window(end - (m + 1) * Q, 2 * Q), lo, hi, m)
            else:  # result m is due at output block m + 2
                seg.ifft(blocks[(m + 2) % len(blocks)], lo, hi, m)
        window = hist.window(end - t * G, 2 * G)
        if self._ring_len:  # the later segments' share of the next G outputs is complete
            block = self._ring_g[t % len(self._ring_g)]
            self._tail = self._segs[0].whole_tick(window, t - 1, block)
            block.zero_()
        else:
            self._tail = self._segs[0].whole_tick(window, t - 1, None)

    def process(self, x: torch.Tensor) -> torch.Tensor:
        n = check_block(x, self.channels, self.max_block)
        G, hist, head = self.partition, self._hist, self._head
        hist.append(x)
        if not self._segs:  # the whole IR is the head
            out = self._outs[n]
            head.run(hist.window(0, G - 1 + n), out)
            return out
        pos, end = self._pos, self._pos + n
        off = pos % G
        if off + n < G:  # no tick in this call
            out = self._outs[n]
            head.run_add(hist.window(0, G - 1 + n), self._tail[:, off:off + n], out)
            self._pos = end
            return out
        i = 0
        while i < n:  # pieces between ticks
            k = min(n - i, G - off)
            out = self._outs[n] if k == n else self._out[:, i:i + k]
            tail = self._tail if k == G else self._tail[:, off:off + k]
            head.run_add(hist.window(n - i - k, G - 1 + k), tail, out)
            i += k
            off += k
            if off == G:
                self._tick((pos + i) // G, end)
                off = 0
        self._pos = end
        return self._outs[n]

    def before_block(self, frames: int) -> None:
        """Host side of the next block: nothing here (``process`` does it all)."""

    def reset(self) -> None:
        """Clear all signal state (input history, delay lines, pending output); keep the IR."""
        self._hist.reset()
        self._ring.zero_()
        for seg in self._segs:
            seg.reset()
        self._tail = self._zero_tail
        self._pos = 0

    @property
    def latency(self) -> int:
        """Added latency in samples: always 0."""
        return 0


class PartitionedConvolver(_Partitioned):
    """Zero-latency uniformly partitioned overlap-save convolution.

    The first ``partition`` taps are computed directly on every call; taps beyond them in
    partitions of ``partition`` taps (FFT size ``2 * partition``) whose sum for the next
    ``partition`` outputs is computed as soon as the last ``partition`` inputs are complete.

    Args:
        taps: numpy ``(T,)`` (every channel) or ``(channels, T)`` / ``(1, T)``, any float dtype.
        channels: number of channels of the blocks.
        max_block: the most frames one ``process`` call receives.
        device: torch device of blocks and buffers.
        partition: partition size in taps (default ``max_block``, at least 32, on CPU at most
            1024): about the block size is best; smaller ones cost more ticks per call, larger
            ones an uneven cost per call.

    Shape: ``process`` takes ``(channels, n)`` float32, ``1 <= n <= max_block``, returns
    ``(channels, n)`` float32, a view into an internal buffer valid until the next call.
    Output sample ``t`` depends only on inputs up to ``t``. Single-threaded use.
    """

    def __init__(self, taps, channels: int, max_block: int, device="cpu",
                 partition: int | None = None) -> None:
        super().__init__(taps, channels, max_block, device, partition,
                         lambda T, G, C: nu.uniform_plan(T, G))


class NonUniformConvolver(_Partitioned):
    """Zero-latency non-uniformly partitioned convolution (CPU, long IRs).

    Same interface as ``PartitionedConvolver``. ``partition`` (same default) is the head and
    the smallest partition; later partitions are ``2**k`` times larger, up to
    ``max_ratio * partition`` and ``max_size`` taps, as the cost model's dynamic programme
    finds cheapest, and their work is spread over the ticks until their output is due (see
    ``nonuniform``). ``layout`` lists the segments as ``Seg(start, size, count, ratio)``.
    """

    def __init__(self, taps, channels: int, max_block: int, device="cpu",
                 partition: int | None = None, max_ratio: int = nu.MAX_RATIO,
                 max_size: int = nu.MAX_PARTITION) -> None:
        super().__init__(taps, channels, max_block, device, partition,
                         lambda T, G, C: nu.plan_segments(T, G, C, max_ratio, max_size))


class CaptureConvolver:
    """Zero-latency uniformly partitioned convolution for a CUDA graph (capture mode).

    The first ``G = max_block`` taps are computed directly on every call; the taps after them
    in ``K`` partitions of ``G`` (``upols.RingSegment``, FFT size ``2G``), whose whole sum for
    the next ``G`` outputs is computed at each tick (every ``G`` input samples). The host part
    of a call, ``before_block(frames)``, moves the stream position and writes into device
    controls the delay line slot of the tick and where the tick's input window and the call's
    tail lie in their buffers; ``process`` only launches kernels. A call of ``max_block``
    frames holds exactly one tick and runs the same kernels with the same arguments wherever
    it falls in the stream (window and tail are gathered by those indices), so a graph
    captured from one such call replays every later one, also after a shorter call (the end
    of a file, run eagerly) has moved the ticks off the block boundaries.

    A long IR on many channels (``far.far_ratio``: where the fused kernels run and the ring
    would read 16 MB a tick) keeps only taps ``[G, 2Q)`` in that ring; a ``far.FarSegment`` takes
    the rest in partitions of ``Q = R G``, each tick doing one channel group's share of a result.

    Same arguments and ``process`` as ``PartitionedConvolver`` (without ``partition``), and
    ``far``: the far segment's ``R`` (0: none; default: ``far_ratio``'s choice).
    ``before_block(frames)`` must precede each ``process`` of ``frames``.
    """

    def __init__(self, taps, channels: int, max_block: int, device="cpu", far: int | None = None) -> None:
        h = as_taps(taps, channels)
        self.channels = C = int(channels)
        self.max_block = G = self.partition = check_max_block(max_block)
        self.device = torch.device(device)
        self.num_taps = T = h.shape[1]
        self.fused = fused.available(self.device)  # the steps around a tick as two kernels
        if far is None:
            far = far_ratio(T, G, C) if self.fused else 0
        near = min(T, 2 * far * G) if far else T  # the uniform ring's taps end
        K = max(1, -(-(near - G) // G))
        self._head = DirectCore(h[:, :G], C, G, self.device)
        distinct = h[:row_period(h, C)]  # the IR rows the channels share
        self._seg = RingSegment(distinct, G, G, K, C, self.device)
        self._far = FarSegment(distinct, G, far, C, self.device) if far else None
        self._head_taps = torch.tensor(h[:, :G], dtype=torch.float32, device=self.device)
        # the tick's window ends up to G - 1 samples before the newest input
        self._hist = ShiftedHistory(C, 3 * G - 1, G, self.device)
        self._window = torch.zeros(C, 2 * G, device=self.device)
        # [tail of the tick before the last | tail of the last tick]
        self._tails = torch.zeros(C, 2 * G, device=self.device)
        self._tail = torch.zeros(C, G, device=self.device)  # the call's tail; fused, small: the tick
        self._out = torch.zeros(C, G, device=self.device)
        self._slot = Control(1, self.device, torch.long)  # the tick's block b % K
        self._window_at = Control(2 * G, self.device, torch.long)  # window positions in _hist
        self._tail_at = Control(G, self.device, torch.long)  # the call's tail positions in _tails
        self._written = (None, None)  # what the two index controls hold: (back, (start, frames))
        self._pos = 0
        self._due = False

    @property
    def latency(self) -> int:
        """Added latency in samples: always 0."""
        return 0

    def before_block(self, frames: int) -> None:
        """Host side of the next call of ``frames``: whether it holds a tick, the controls."""
        G = self.partition
        off = self._pos % G
        self._due = off + frames >= G
        back, tail = self._written
        if self._due:
            self._slot.set(self._pos // G % self._seg.K)
            if back != off + frames - G:  # the window ends this many samples before the call's
                back = off + frames - G
                self._window_at.set(np.arange(self._hist.size - 2 * G, self._hist.size) - back)
        start = off if self._due else off + G  # after a tick the new tail starts at G
        if tail != (start, frames):
            tail = (start, frames)
            self._tail_at.values[:frames] = np.arange(start, start + frames)
            self._tail_at.commit()
        self._written = (back, tail)
        if self._far:
            self._far.before_block(self._pos, frames)
        self._pos += frames

    def process(self, x: torch.Tensor) -> torch.Tensor:
        n = check_block(x, self.channels, self.max_block)
        G, hist = self.partition, self._hist
        far = self._far.compute(x) if self._far else None
        if self.fused and n == G:  # fused_convolver: the same steps, two kernels around the tick
            window = fused_convolver.append_window(x, hist.buf, hist.keep, self._window_at.tensor, self._window)
            seg, spectra = self._seg, None
            if seg.turns is not None:  # both transforms direct DFTs, in the ring's and the last kernel
                tick, spectra = self._tail, seg.spectra(window, self._slot.tensor)
            else:
                tick = seg.tick(window, self._slot.tensor)
            out = fused_convolver.finish(self._tails, tick, self._tail_at.tensor, self._head_taps, hist.buf, self._out,
                                         spectra, seg.turns)
        else:
            hist.append(x)
            if n == G or self._due:  # a full call always holds one tick
                window = torch.index_select(hist.buf, 1, self._window_at.tensor, out=self._window)
                self._tails[:, :G].copy_(self._tails[:, G:])
                self._tails[:, G:].copy_(self._seg.tick(window, self._slot.tensor))
            tail = torch.index_select(self._tails, 1, self._tail_at.tensor[:n], out=self._tail[:, :n])
            out = self._out[:, :n]
            self._head.run_add(hist.window(0, self._head.T - 1 + n), tail, out)
        return self._far.add(far, out) if self._far else out

    def reset(self) -> None:
        """Clear all signal state (input history, delay line, pending output); keep the IR."""
        self._hist.reset()
        self._seg.reset()
        if self._far:
            self._far.reset()
        self._tails.zero_()
        self._pos = 0


def row_period(h: np.ndarray, channels: int) -> int:
    """The fewest rows ``p`` (dividing ``channels``) of taps ``h`` ``(1 or channels, T)`` such
    that channel ``c`` uses row ``c % p`` (a stereo IR spread over many channels: 2)."""
    rows = h.shape[0]
    for p in range(1, rows):
        if rows % p == 0 and (h.reshape(rows // p, p, -1) == h[:p]).all():
            return p
    return rows


def default_partition(max_block: int, device) -> int:
    """Head partition: the block size (one tick per block measured best: per-tick overhead
    outweighs the larger head), at least 32; on CPU at most 1024, where the head's Toeplitz
    GEMM turns memory-bound."""
    G = max(int(max_block), 32)
    return min(G, 1024) if torch.device(device).type == "cpu" else G


def make_convolver(taps, channels: int, max_block: int, device="cpu", capture: bool = False):
    """Pick the fastest exact kernel for these taps on this device.

    - with ``capture`` on CUDA with Triton, ``FusedFIR`` for taps up to ``FUSED_MAX_TAPS``
      (one kernel per block, the effect's gain and blend folded in);
    - ``DirectFIR`` for short taps (up to ``DIRECT_MAX_TAPS``: one GEMM per block);
    - with ``capture`` (every block of ``max_block`` frames must run the same kernels, for a
      CUDA graph) otherwise ``CaptureConvolver``, on any device;
    - on CUDA otherwise the uniform ``PartitionedConvolver`` (one tick per block, fixed shapes);
    - on CPU otherwise ``NonUniformConvolver`` where the cost model says it wins with a margin
      for its uneven ticks (mean + half its longest work unit below the uniform layout's
      mean), else the uniform ``PartitionedConvolver``. With 2 channels that is from about
      16k taps at 64 frames, 32k at 256 (measured: about where its mean wins by 1.5x and its
      p99 is no worse than 10 % above the uniform one's).

    Returns an object with ``before_block(frames)``, ``process(x)`` and ``reset()`` (see
    ``DirectFIR``; ``before_block`` does something for ``CaptureConvolver`` only).

    >>> import numpy as np, torch
    >>> conv = make_convolver(np.r_[1.0, 0.5], channels=1, max_block=4)
    >>> conv.process(torch.tensor([[1.0, 0.0, 0.0]])).tolist()
    [[1.0, 0.5, 0.0]]
    """
    h = as_taps(taps, channels)
    max_block = check_max_block(max_block)
    device = torch.device(device)
    rows, T = h.shape
    gpu = device.type != "cpu"
    if capture and fused.available(device) and T <= FUSED_MAX_TAPS:
        return FusedFIR(h, channels, max_block, device)
    direct = T <= DIRECT_MAX_TAPS[device.type == "cuda"]
    if direct and DirectCore.subblock(rows, T, max_block, device) >= min(max_block, 16):
        return DirectFIR(h, channels, max_block, device, capture)
    if capture:
        if T <= max_block:  # no partition after the head
            return DirectFIR(h, channels, max_block, device, capture)
        return CaptureConvolver(h, channels, max_block, device)
    G = default_partition(max_block, device)
    if gpu:
        return PartitionedConvolver(h, channels, max_block, device, partition=G)
    uni = nu.plan_cost_us(nu.uniform_plan(T, G), G, channels, G)
    segs = nu.plan_segments(T, G, channels)
    non = nu.plan_cost_us(segs, G, channels, G) + 0.5 * nu.worst_unit_us(segs, channels)
    if non < uni:
        return NonUniformConvolver(h, channels, max_block, device, partition=G)
    return PartitionedConvolver(h, channels, max_block, device, partition=G)


DIRECT_MAX_TAPS = (2048, 8192)  # (CPU, CUDA)
FUSED_MAX_TAPS = 4096
