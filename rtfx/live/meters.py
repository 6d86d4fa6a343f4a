"""Per-block timing and stream health, written by the audio thread, read by anyone.

The audio thread writes into preallocated numpy arrays and plain int counters (no locks, no
allocation); readers copy what they need and compute percentiles off the audio thread.
"""
from __future__ import annotations

import numpy as np


class BlockMeters:
    """A ring of the last ``capacity`` blocks' DSP times plus stream counters.

    Written only by the audio thread (``record``, ``add_status``); ``summary`` may be called
    from any thread (it reads a snapshot; a block recorded meanwhile may or may not be in it).
    """

    def __init__(self, samplerate: float, blocksize: int, capacity: int = 1 << 16) -> None:
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.deadline_ns = int(round(blocksize / samplerate * 1e9))
        self._dsp_ns = np.zeros(capacity, dtype=np.int64)
        self.blocks = 0  # shared: written by the audio thread only
        self.deadline_misses = 0
        self.faults = 0
        self.input_overflows = 0
        self.input_underflows = 0
        self.output_overflows = 0
        self.output_underflows = 0

    def record(self, dsp_ns: int, frames: int) -> None:
        """One block's DSP time in nanoseconds (audio thread)."""
        self._dsp_ns[self.blocks % len(self._dsp_ns)] = dsp_ns
        self.blocks += 1
        if dsp_ns * self.blocksize > self.deadline_ns * frames:  # deadline scales with frames
            self.deadline_misses += 1

    def add_status(self, status) -> None:
        """Count PortAudio's callback flags (a ``sounddevice.CallbackFlags``)."""
        self.input_overflows += bool(status.input_overflow)
        self.input_underflows += bool(status.input_underflow)
        self.output_overflows += bool(status.output_overflow)
        self.output_underflows += bool(status.output_underflow)

    @property
    def xruns(self) -> int:
        """PortAudio's over- and underflow flags, summed."""
        return self.input_overflows + self.input_underflows + self.output_overflows + self.output_underflows

    def dsp_times_us(self, last: int | None = None) -> np.ndarray:
        """DSP times in microseconds: the newest ``last`` blocks, or all kept (``capacity``)."""
        count = min(self.blocks, len(self._dsp_ns), last or len(self._dsp_ns))
        end = self.blocks % len(self._dsp_ns)
        ring = np.roll(self._dsp_ns, -end) if self.blocks > len(self._dsp_ns) else self._dsp_ns[: self.blocks]
        return ring[len(ring) - count :].astype(np.float64) / 1e3

    def summary(self, last: int | None = None) -> dict:
        """p50/p99/max DSP time (us) over the newest ``last`` blocks (default: all kept), load
        at p99 (fraction of the deadline), and the counters since the start.

        Live displays pass ``last`` (~4096): percentiles of 65536 blocks take ~1.6 ms, time the
        reading thread would hold the GIL the audio callback needs.
        """
        times = self.dsp_times_us(last)
        deadline_us = self.deadline_ns / 1e3
        if times.size:
            p50, p99, peak = np.percentile(times, 50), np.percentile(times, 99), times.max()
        else:
            p50 = p99 = peak = 0.0
        return {
            "blocks": self.blocks,
            "deadline_us": round(deadline_us, 1),
            "dsp_us": {"p50": round(float(p50), 1), "p99": round(float(p99), 1), "max": round(float(peak), 1)},
            "load_p99": round(float(p99) / deadline_us, 4),
            "xruns": self.xruns,
            "xrun_flags": {
                "input_overflow": self.input_overflows, "input_underflow": self.input_underflows,
                "output_overflow": self.output_overflows, "output_underflow": self.output_underflows,
            },
            "deadline_misses": self.deadline_misses,
            "faults": self.faults,
        }


class SignalTap:
    """The newest ``capacity`` frames of a signal, for level meters and a spectrum.

    ``push`` belongs to the audio thread (a copy into a preallocated ring, no allocation);
    ``latest`` may be called from any thread (a block pushed meanwhile may tear one read,
    which a display shows for one frame at most).
    """

    def __init__(self, channels: int, capacity: int = 8192) -> None:
        self._ring = np.zeros((capacity, channels), dtype=np.float32)
        self.frames = 0  # frames pushed since the start (audio thread writes)

    @property
    def channels(self) -> int:
        return self._ring.shape[1]

    def push(self, block: np.ndarray) -> None:
        """Append a ``(frames, channels)`` block (audio thread)."""
        capacity, frames = len(self._ring), len(block)
        start = self.frames % capacity
        first = min(frames, capacity - start)
        self._ring[start : start + first] = block[:first]
        if first < frames:
            self._ring[: frames - first] = block[first:]
        self.frames += frames

    def latest(self, frames: int) -> np.ndarray:
        """A copy of the newest ``frames`` frames (fewer at the start), oldest first."""
        capacity = len(self._ring)
        frames = min(frames, capacity, self.frames)
        end = self.frames % capacity
        if frames <= end:
            return self._ring[end - frames : end].copy()
        return np.concatenate([self._ring[capacity - (frames - end) :], self._ring[:end]])


def levels(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak and RMS (linear full scale) of each channel of ``(frames, channels)`` audio."""
    if not len(frames):
        return np.zeros(frames.shape[1]), np.zeros(frames.shape[1])
    return np.abs(frames).max(axis=0), np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=0))


def spectrum_db(frames: np.ndarray, size: int = 4096) -> np.ndarray:
    """Magnitude spectrum (dBFS, ``size // 2 + 1`` bins) of the channel mean of the newest
    ``size`` frames, Hann-windowed; a sine at full scale reads about 0 dB."""
    mono = np.zeros(size)
    if len(frames):
        tail = frames[-size:].mean(axis=1)
        mono[size - len(tail) :] = tail
    window = np.hanning(size)
    magnitude = np.abs(np.fft.rfft(mono * window)) * (2.0 / window.sum())
    return 20.0 * np.log10(np.maximum(magnitude, 1e-7))
