"""Recording the live output to a file without touching the disk from the audio thread.

The audio thread copies each output block into a preallocated ring; a writer thread drains
the ring to a float WAV a few times a second. If the stream dies, everything recorded so far
is on disk once ``close`` returns.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile


class Recorder:
    """Ring-buffered float WAV writer.

    Args:
        path: output file (32-bit float WAV).
        samplerate: Hz.
        channels: channels per frame.
        ring_seconds: ring length; the writer must drain faster than this (it drains every
            0.1 s), or ``dropped_frames`` counts the loss.
    """

    def __init__(self, path: str | Path, samplerate: int, channels: int, ring_seconds: float = 20.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = soundfile.SoundFile(str(self.path), "w", int(samplerate), channels, subtype="FLOAT")
        self._ring = np.zeros((int(ring_seconds * samplerate), channels), dtype=np.float32)
        self._written = 0  # frames put in the ring (audio thread only)
        self._drained = 0  # frames written to the file (writer thread only)
        self.dropped_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtfx-recorder", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        """Copy ``block`` ``(frames, channels)`` into the ring (audio thread; no allocation)."""
        size = len(self._ring)
        frames = block.shape[0]
        if self._written + frames - self._drained > size:
            self.dropped_frames += frames
            return
        start = self._written % size
        first = min(frames, size - start)
        self._ring[start : start + first] = block[:first]
        self._ring[: frames - first] = block[first:]
        self._written += frames

    def _drain(self) -> None:
        size = len(self._ring)
        while self._drained < self._written:
            start = self._drained % size
            stop = min(size, start + (self._written - self._drained))
            self._file.write(self._ring[start:stop])
            self._drained += stop - start

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._drain()

    def close(self) -> None:
        """Stop the writer, write what is left, close the file."""
        self._stop.set()
        self._thread.join()
        self._drain()
        self._file.close()
