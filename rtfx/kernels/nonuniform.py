"""Partition layouts for zero-latency convolution, and how their work is spread over ticks.

A *tick* happens every ``G`` input samples (``G``: the partition of the direct-form head).
The IR is cut into the head ``[0, G)``, computed in the time domain on every call, and
*segments*; segment ``i`` holds ``K_i`` partitions of ``Q_i = G * 2**e_i`` taps starting at tap
``s_i`` and is one uniformly partitioned overlap-save (UPOLS) convolver with FFT size ``2 Q_i``.

Timing. Segment ``i``'s input block ``m`` (samples ``[m Q, (m+1) Q)``) is complete at tick
``(m+1) R`` with ``R = Q / G``. Its contribution to output block ``c`` only needs input blocks
up to ``c - s/Q``. So:

- the first segment (``Q = G``, ``s = G``) is computed whole at the tick that completes a block,
  for the very next ``G`` outputs (Gardner's zero-latency scheme);
- a later segment needs ``s >= 2 Q`` and ``s`` a multiple of ``Q``: the result that block ``m``
  makes possible is due only at tick ``(m+2) R``, so its work (FFT, complex multiply-adds over
  the partitions, inverse FFT) may be spread over the ``R + 1`` ticks ``(m+1) R .. (m+2) R``
  (the time-distributed non-uniform scheme Wefers 2014 surveys). ``s = D Q`` with ``D > 2``
  is fine too: the delay line then holds ``D - 2`` extra spectra.

Layout (``plan_segments``). Per tick, a segment costs ``(2 FFT(2Q) + K MAC(Q+1)) / R``: bigger
partitions make the multiply-adds cheaper per sample but the FFTs (and the spikes they cause)
bigger. As Garcia (2002) does for his layouts, a dynamic programme over (start tap, partition
size) minimises the mean cost per tick under a cost model (of this machine's torch CPU kernels),
with partitions capped at ``MAX_RATIO * G`` so that no single FFT unit costs more than a small
fraction of a tick's real time (128: one channel's 16384-point FFT at G = 64, ~100 us of the
1333 us a tick lasts at 48 kHz), and at ``MAX_PARTITION`` taps: measured with a 10 s IR at
G = 256, partitions of 32768 taps lowered the mean per block by 6 % but raised p99 by 36 %.

Schedule (``spread``). Each segment's work for one result is a list of units, in order: FFTs by
channel group, multiply-adds by partition range, inverse FFTs by channel group; each unit is
given a tick offset in ``[0, R]``. Segments are placed shortest period first (so the longest
sees every tick's exact load): first the least peak level at which the units fit in order,
then each unit on the least loaded tick it may take, evenly spread among equals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_RATIO = 128  # largest partition / head partition
MAX_PARTITION = 16384  # and at most this many taps: bigger FFTs cost more than they save at p99
UNIT_TARGET_US = 40.0  # aim for work units about this long (spikes vs per-op overhead)

# Cost model, microseconds, torch CPU float32/complex64, one thread, fitted roughly to what
# the 2-core dev machine measured (torch 2.13) *inside* a block, where each op costs more than
# in a tight loop: per op, FFT per channel * N log2 N, complex multiply-add per element, and
# the head's Toeplitz GEMM per byte of matrix read (it is memory-bound with few channels).
OP_US = 4.0
FFT_US = 0.4e-3
MAC_FAST_US, MAC_SLOW_US = 1.2e-3, 3e-3  # delay line in cache / streamed from memory
GEMM_BYTE_US = 5e-5


def mac_us(size: int, channels: int) -> float:
    """Cost per complex multiply-add element of partitions of ``size`` taps: segments of big
    partitions hold megabytes of spectra and run at memory speed."""
    return MAC_FAST_US if (size + 1) * channels <= 8192 else MAC_SLOW_US


def fft_us(n: int, channels: int) -> float:
    return OP_US + FFT_US * channels * n * math.log2(max(n, 2))


@dataclass(frozen=True)
class Seg:
    """Segment: ``count`` partitions of ``size`` taps from tap ``start``; ``ratio = size / G``."""

    start: int
    size: int
    count: int
    ratio: int

    @property
    def lag(self) -> int:
        """Extra delay-line spectra: ``start/size - 1`` for the first segment, ``- 2`` later."""
        return self.start // self.size - (1 if self.ratio == 1 else 2)


def segment_us(size: int, count: int, ratio: int, channels: int) -> float:
    """Mean cost per tick of one segment (all its work divided over its ``ratio`` ticks)."""
    fixed = 2 * fft_us(2 * size, channels) + 3 * OP_US
    return (fixed + OP_US + mac_us(size, channels) * (size + 1) * channels * count) / ratio


def head_us(G: int, n: int, channels: int) -> float:
    """Cost of the direct-form head (G taps) for a call of n frames (plus block I/O)."""
    sub = min(n, 256)
    calls = -(-n // sub)
    return calls * (OP_US + GEMM_BYTE_US * 4 * (G - 1 + sub) * sub) + 2 * OP_US


def plan_cost_us(segs: list[Seg], G: int, channels: int, n: int) -> float:
    """Model of the mean cost of one call of ``n`` frames (head, I/O, ticks)."""
    tick = sum(segment_us(s.size, s.count, s.ratio, channels) for s in segs)
    return head_us(G, n, channels) + tick * n / G


def worst_unit_us(segs: list[Seg], channels: int) -> float:
    """Model of the longest single work unit of the spread segments (0 if none)."""
    return max([u[3] for s in segs if s.ratio > 1 for u in units_for(s, channels)] + [0.0])


def uniform_plan(num_taps: int, G: int) -> list[Seg]:
    """Head of G taps, then every partition of G taps (UPOLS)."""
    if num_taps <= G:
        return []
    return [Seg(G, G, -(-(num_taps - G) // G), 1)]


def plan_segments(num_taps: int, G: int, channels: int, max_ratio: int = MAX_RATIO,
                  max_size: int = MAX_PARTITION) -> list[Seg]:
    """The layout of least modelled mean cost per tick (see the module docstring), with
    partitions of at most ``max_ratio * G`` and ``max_size`` taps (``G`` itself always)."""
    if num_taps <= G:
        return []
    ratios = [1]
    while (ratios[-1] * 2 <= max_ratio and ratios[-1] * 2 * G <= max_size
           and ratios[-1] * 2 * G < num_taps):
        ratios.append(ratios[-1] * 2)
    sizes = [r * G for r in ratios]
    part = [mac_us(q, channels) * (q + 1) * channels / r for q, r in zip(sizes, ratios)]
    fixed = [segment_us(q, 0, r, channels) for q, r in zip(sizes, ratios)]
    # g[k][s // Q_k]: least cost of covering taps [s, T) when a partition of size Q_k starts at s
    # (the segment it belongs to already paid for); f = g + fixed cost of starting a segment.
    # A segment of size Q_k may start at s if s % Q_k == 0 and s >= 2 Q_k (k > 0).
    g = [dict() for _ in sizes]
    nxt = [dict() for _ in sizes]  # choice: None = same size continues, k' = switch, -1 = end
    top = (num_taps // G + 1) * G
    for s in range(top, G - 1, -G):
        for k, q in enumerate(sizes):
            if s % q or s >= num_taps or (k and s < q):
                continue
            e = s + q
            if e >= num_taps:
                g[k][s], nxt[k][s] = part[k], -1
                continue
            best, choice = g[k].get(e, math.inf), None
            for k2 in range(k + 1, len(sizes)):
                q2 = sizes[k2]
                if e % q2 == 0 and e >= 2 * q2 and e in g[k2]:
                    c = fixed[k2] + g[k2][e]
                    if c < best:
                        best, choice = c, k2
            g[k][s], nxt[k][s] = part[k] + best, choice
    segs, k, s = [], 0, G
    start, count = s, 0
    while True:
        choice = nxt[k][s]
        count += 1
        s += sizes[k]
        if choice is None:
            continue
        segs.append(Seg(start, sizes[k], count, ratios[k]))
        if choice == -1:
            return segs
        k, start, count = choice, s, 0


def split_even(total: int, parts: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, total, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def units_for(seg: Seg, channels: int) -> list[tuple[str, int, int, float]]:
    """Work units of one result of ``seg``, in order: (kind, lo, hi, modelled cost in us)."""
    n = 2 * seg.size
    per_ch = FFT_US * n * math.log2(n)
    groups = split_even(channels, min(channels, max(1, math.ceil(channels * per_ch / UNIT_TARGET_US))))
    mac_per = mac_us(seg.size, channels) * (seg.size + 1) * channels
    chunks = split_even(seg.count, min(seg.count, max(seg.ratio - 1, 1),
                                       max(1, math.ceil(seg.count * mac_per / UNIT_TARGET_US))))
    units = [("fft", a, b, 2 * OP_US + per_ch * (b - a)) for a, b in groups]
    units += [("mac", a, b, 2 * OP_US + mac_per * (b - a)) for a, b in chunks]
    units += [("ifft", a, b, 2 * OP_US + per_ch * (b - a)) for a, b in groups]
    return units


def spread(segs: list[Seg], channels: int, base_us: float = 0.0) -> list[list[tuple[str, int, int, int]]]:
    """Tick offsets for the units of every segment with ``ratio > 1``.

    Returns, per segment, a list of ``(kind, lo, hi, offset)`` with offsets non-decreasing in
    ``[0, ratio]``. ``base_us`` is the load every tick carries anyway (head, first segment).
    """
    period = max([s.ratio for s in segs] + [1])
    load = np.full(period, base_us)
    out: list[list[tuple[str, int, int, int]]] = [[] for _ in segs]
    order = sorted(range(len(segs)), key=lambda i: segs[i].size)  # longest period last: it
    # sees the exact load of every tick and fills the gaps
    for i in order:
        seg = segs[i]
        if seg.ratio == 1:
            continue
        units = units_for(seg, channels)
        R = seg.ratio
        folded = load.reshape(-1, R).max(axis=0)  # phase p's worst load over the period

        def place(level: float) -> bool:
            add, tick = np.zeros(R), 0
            for u in units:
                while tick <= R and folded[tick % R] + add[tick % R] + u[3] > level:
                    tick += 1
                if tick > R:
                    return False
                add[tick % R] += u[3]
            return True

        lo, hi = float(folded.min()), float(folded.max() + sum(u[3] for u in units))
        for _ in range(40):  # least level at which the units fit in order (earliest fit)
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if place(mid) else (mid, hi)
        # spread them out under that level: latest feasible tick of each unit (fill from the
        # end), then each unit on the least loaded tick between its predecessor and that
        latest, add, tick = [0] * len(units), np.zeros(R), R
        for k in range(len(units) - 1, -1, -1):
            c = units[k][3]
            while tick > 0 and folded[tick % R] + add[tick % R] + c > hi:
                tick -= 1
            latest[k] = tick
            add[tick % R] += c
        add, taken, prev = np.zeros(R), [], 0
        for k, u in enumerate(units):
            ticks = np.arange(prev, max(prev, latest[k]) + 1)
            level = folded[ticks % R] + add[ticks % R] + u[3]
            # evenly spread: the first tick from the unit's share of the period on that stays
            # under the level, else the least loaded one it may take
            ok = ticks[(level <= hi) & (ticks >= round(k * R / len(units)))]
            prev = int(ok[0]) if len(ok) else int(ticks[np.argmin(level)])
            add[prev % R] += u[3]
            taken.append(prev)
        load += np.tile(add, period // R)
        out[i] = [(u[0], u[1], u[2], t) for u, t in zip(units, taken)]
    return out
