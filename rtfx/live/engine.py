"""The live engine: a PortAudio stream whose callback runs a chain block by block.

Threads:
- PortAudio's audio thread runs ``_block``: it never allocates big buffers, never blocks on a
  lock another thread can hold, does no I/O, and never raises (an exception becomes a block of
  silence and a counted fault).
- Any other thread controls it: parameter targets (``set_parameter``), bypass and mix go
  straight to the effects (plain float/bool stores); a new chain is prepared on the caller's
  thread (``replace_chain``) and handed over through a deque, then crossfaded in at a block
  boundary; the old one is handed back to be freed off the audio thread.
"""
from __future__ import annotations

import collections
import gc
import threading
import time
from dataclasses import replace

import numpy as np
import sounddevice as sd
import torch

from ..effect import Effect
from ..spec import ProcessSpec
from ..stream import BlockProcessor
from .handover import Handover
from .meters import BlockMeters, SignalTap
from .recorder import Recorder


#: Longest time a chain moving between CPU and CUDA runs unheard to fill its state (seconds).
MAX_SHADOW_S = 3.0


class LiveEngine:
    """Stream ``chain`` live on a sound device.

    Args:
        chain: the effect chain (prepared here).
        samplerate: Hz. blocksize: frames per callback. channels: output (= chain) channels.
        device: PortAudio device index for output (and input), or a pair (input, output).
        input_channels: 1-based input channels feeding the chain (one is spread to all).
        dsp: "cpu" or "cuda".
        input_audio: float32 ``(frames, channels or 1)`` played into the chain instead of the
            input device (re-amping); the stream is then output-only.
        recorder: where the chain's output goes, if anywhere.
        crossfade_ms: length of the crossfade when a new chain is swapped in.
        tail_seconds: after ``input_audio`` ends, keep streaming silence into the chain this
            long (reverb tails) before ``finished`` is set.
    """

    def __init__(
        self,
        chain: Effect,
        samplerate: int,
        blocksize: int,
        channels: int,
        device=None,
        input_channels: list[int] | None = None,
        dsp: str = "cpu",
        input_audio: np.ndarray | None = None,
        recorder: Recorder | None = None,
        crossfade_ms: float = 50.0,
        tail_seconds: float = 0.0,
    ) -> None:
        self.spec = ProcessSpec(samplerate, blocksize, channels, dsp)
        self.processor = BlockProcessor(chain, self.spec, ahead=True)
        self._latest = self.processor.chain  # the chain edits go to (the newest handed over)
        self._switching = False  # the newest chain is a copy on another device (same structure)
        self.meters = BlockMeters(samplerate, blocksize)
        self.recorder = recorder
        self.input_channels = [c - 1 for c in (input_channels or [1])]
        self._input_audio = input_audio
        self._position = 0  # frames of input_audio played (audio thread)
        self._end = 0 if input_audio is None else len(input_audio) + int(tail_seconds * samplerate)
        self.loop_input = False  # True: input_audio plays round and round (the GUI's demo input)
        self.input_tap = SignalTap(channels)  # the chain's input, for meters
        self.output_tap = SignalTap(channels)  # what went to the device
        self.finished = threading.Event()  # set when input_audio has played out
        self.stream_ended = threading.Event()  # set by PortAudio when the stream stops
        self._inbox: collections.deque = collections.deque()  # new processors, to the audio thread
        self._outbox: collections.deque = collections.deque()  # old ones, back for freeing
        self._fade_blocks = max(1, round(crossfade_ms * 1e-3 * samplerate / blocksize))
        self._handover: Handover | None = None
        self._chain_in = np.zeros((blocksize, channels), dtype=np.float32)
        self._thread_ready = False
        self.last_callback = 0.0  # time.monotonic() of the latest callback
        self.block_counter: np.ndarray | None = None  # if set: [0] = blocks so far, per block
        self.stream = self._open(device)
        self._latency = self.stream.latency  # read once: PortAudio may hang on a dead device

    def _open(self, device):
        common = dict(
            samplerate=self.spec.samplerate, blocksize=self.spec.blocksize, dtype="float32",
            latency="low", finished_callback=self.stream_ended.set,
        )
        if self._input_audio is not None:
            output = device[1] if isinstance(device, tuple) else device
            return sd.OutputStream(device=output, channels=self.spec.channels, callback=self._output_callback, **common)
        return sd.Stream(
            device=device, channels=(max(self.input_channels) + 1, self.spec.channels),
            callback=self._duplex_callback, **common,
        )

    # -- control (any thread) --------------------------------------------------------------
    @property
    def chain(self) -> Effect:
        """The chain playing now (after a swap, the new one)."""
        return self.processor.chain

    def start(self) -> None:
        """Start streaming. Everything allocated so far is frozen out of the garbage
        collector's reach, so a collection in the audio thread stays short."""
        gc.collect()
        gc.freeze()
        self.last_callback = time.monotonic()
        self.stream.start()

    def stop(self) -> None:
        """Stop and close the stream, then close the recorder (idempotent)."""
        if not self.stream.closed:
            self.stream.stop(ignore_errors=True)
            self.stream.close(ignore_errors=True)
        self.abandon()

    def abandon(self) -> None:
        """Close the recorder (everything recorded is on disk) without touching the stream.

        For a device that vanished mid-stream: PortAudio's JACK backend then hangs in
        stop/abort/close and asserts in terminate, so the stream must be left alone (the
        CLI exits the process without PortAudio's teardown).
        """
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    @property
    def latest_chain(self) -> Effect:
        """The newest chain: the one playing, or one handed over and still fading in. Edits
        (parameters, bypass) made right after ``replace_chain`` belong to it."""
        return self._latest

    def set_parameter(self, stage: int, name: str, value: float) -> None:
        """Set a parameter target of stage ``stage`` of the newest chain (ramped, no click).
        While a DSP switch shadows, the playing chain (same structure) gets it too."""
        self._latest[stage].set(name, value)
        if self._switching and self.processor.chain is not self._latest:
            self.processor.chain[stage].set(name, value)

    def replace_chain(self, chain: Effect) -> None:
        """Prepare ``chain`` here (on CUDA: capture its graph), then crossfade to it at a block
        boundary (no dropout)."""
        self._hand_over(Handover(BlockProcessor(chain, self.spec, ahead=True), self._fade_blocks), switching=False)

    def switch_dsp(self, dsp: str) -> str:
        """Move the chain to ``dsp`` ("cpu" or "cuda") while streaming, without a click.

        A copy of the newest chain is prepared on ``dsp`` here, shadows the playing one for the
        chain's memory (``tail_seconds``, at most ``MAX_SHADOW_S``) so that its state fills
        with the same signal, then is crossfaded in. Returns how the new chain runs
        (``BlockProcessor.path``). Raises ``ValueError``/``RuntimeError`` (no GPU) before
        touching the stream.
        """
        from ..preset import chain_from_preset

        spec = replace(self.spec, device=dsp)
        chain = chain_from_preset(self._latest.to_preset())
        processor = BlockProcessor(chain, spec, ahead=True)
        shadow = min(chain.tail_seconds, MAX_SHADOW_S)
        self.spec = spec
        self._hand_over(Handover(processor, self._fade_blocks, round(shadow * spec.samplerate / spec.blocksize)),
                        switching=True)
        return processor.path

    def _hand_over(self, handover: Handover, switching: bool) -> None:
        self._latest = handover.processor.chain
        self._switching = switching
        self._inbox.append(handover)
        while self._outbox:  # free what the audio thread handed back
            self._outbox.popleft()

    @property
    def latency_ms(self) -> dict:
        """Input, output, chain and round-trip latency in ms.

        Input and output are what PortAudio reports; ``chain`` is the chain's own latency
        (``Effect.latency``: look-ahead, linear-phase oversampling), part of the round trip.

        A duplex stream's latencies already include its own block buffering: the round trip
        is input + output (measured exactly on a JACK loopback). An output-only stream
        (re-amping a file) has no input side; its round trip is output + one block, what the
        same settings cost in duplex.
        """
        latency = self._latency
        block = self.spec.blocksize / self.spec.samplerate
        inp, out = latency if isinstance(latency, tuple) else (0.0, latency)
        chain = self.latest_chain.latency / self.spec.samplerate  # look-ahead, oversampling filters
        round_trip = (inp + out if isinstance(latency, tuple) else out + block) + chain
        ms = lambda seconds: round(seconds * 1e3, 3)  # noqa: E731
        return {"input": ms(inp), "output": ms(out), "chain": ms(chain), "round_trip": ms(round_trip)}

    # -- audio thread ------------------------------------------------------------------------
    def _duplex_callback(self, indata, outdata, frames, _time, status) -> None:
        self._block(indata, outdata, frames, status)

    def _output_callback(self, outdata, frames, _time, status) -> None:
        self._block(None, outdata, frames, status)

    def _block(self, indata, outdata, frames: int, status) -> None:
        started = time.perf_counter_ns()
        try:
            if not self._thread_ready:  # per-thread settings: they must be made here
                torch.set_num_threads(1)
                torch.set_flush_denormal(True)
                self._thread_ready = True
            if status:
                self.meters.add_status(status)
            chain_in = self._chain_in[:frames]
            self._read_input(indata, chain_in)
            with torch.inference_mode():
                self._run(chain_in, outdata, frames)
            self.input_tap.push(chain_in)
            self.output_tap.push(outdata)
            if self.recorder is not None:
                self.recorder.push(outdata)
        except Exception:  # noqa: BLE001 - the audio thread must never raise
            outdata.fill(0.0)
            self.meters.faults += 1
        self.last_callback = time.monotonic()
        self.meters.record(time.perf_counter_ns() - started, frames)
        if self.block_counter is not None:  # e.g. shared memory: a watcher sees the stream move
            self.block_counter[0] = self.meters.blocks

    def _read_input(self, indata, chain_in: np.ndarray) -> None:
        if self._input_audio is None:
            sources = self.input_channels
            if len(sources) == 1:
                chain_in[:] = indata[:, sources[0] : sources[0] + 1]
            else:
                np.take(indata, sources, axis=1, out=chain_in)  # no temporary array
            return
        audio, start = self._input_audio, self._position
        if self.loop_input:
            self._read_looped(audio, chain_in)
            return
        part = audio[start : start + len(chain_in)]
        chain_in[: len(part)] = part  # a mono file broadcasts to every channel
        chain_in[len(part) :] = 0.0
        self._position += len(chain_in)
        if self._position >= self._end:
            self.finished.set()

    def _read_looped(self, audio: np.ndarray, chain_in: np.ndarray) -> None:
        filled = 0
        while filled < len(chain_in):
            start = self._position % len(audio)
            part = audio[start : start + len(chain_in) - filled]
            chain_in[filled : filled + len(part)] = part
            filled += len(part)
            self._position += len(part)

    def _run(self, chain_in: np.ndarray, outdata: np.ndarray, frames: int) -> None:
        if self._handover is None and self._inbox:
            self._handover = self._inbox.popleft()
        self.processor.process(chain_in, outdata)
        if self._handover is not None and self._handover.run(chain_in, outdata):
            self._outbox.append(self.processor)
            self.processor, self._handover = self._handover.processor, None
