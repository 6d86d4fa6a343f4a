"""Echo delay: feedback with a high-cut in the loop, tempo sync, ping-pong.

Signal flow per channel (``D`` the delay, ``LP`` a one-pole low-pass)::

    wet[n]  = line[n - D]
    line[n] = x[n] + feedback * LP(wet)[n]

so the first echo is the input itself and each repeat is darker. With ``ping_pong`` the input
(summed to mono) enters the first channel only and the feedback moves each channel's echo to
the next channel (L -> R -> L in stereo), so the echoes alternate sides.

The loop is computed in sub-blocks no longer than the delay (minus the interpolator's reach):
within one, every read touches only samples written before it, so a sub-block is a few
vector operations (two slices per read head, one matmul for the low-pass). In capture mode
the sub-blocks are the same every block: as long as the shortest delay the parameters allow.

Time changes crossfade between two read heads over ``FADE_MS`` (the new head starts at the new
delay; the old one fades out). We chose a crossfade over a slewed read position: a slew bends
the pitch of everything in the line (a tape effect, and a sweep from 10 ms to 2 s would sound
like a siren), while a crossfade keeps every echo at its pitch and lands on the new time in a
fixed, short time. A change arriving during a fade waits for it to end (and for the next
block). The host picks the heads and writes the fade per sample (``_control``); in capture
mode both heads are always read, at delays held in device tensors (``SteadyReads``); on CUDA
with Triton the whole block is then one kernel (``rtfx.kernels.fused_lines.echo``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..controls import Control, LinearRamp
from ..effect import Effect
from ..kernels import fused, fused_lines
from ..kernels.delayline import DelayLine, SteadyReads
from ..kernels.onepole import OnePoleLowpass, lowpass_pole
from ..params import Param
from ..spec import ProcessSpec

BASE_NOTES = {"1/1": 1.0, "1/2": 1 / 2, "1/4": 1 / 4, "1/8": 1 / 8, "1/16": 1 / 16, "1/32": 1 / 32}
#: Note values for tempo sync, as fractions of a whole note ("d" dotted, "t" triplet).
NOTES = {
    f"{name}{suffix}": length * factor
    for name, length in BASE_NOTES.items()
    for suffix, factor in (("", 1.0), ("d", 1.5), ("t", 2 / 3))
}
FADE_MS = 50.0
INTERPOLATION = "lagrange"  # a fixed fractional delay: the maximally flat cubic
LOOP_CHUNK = 256  # longest sub-block of the feedback loop (bounds the low-pass matrix)


def note_ms(note: str, bpm: float) -> float:
    """Length of ``note`` (e.g. "1/8d") at ``bpm`` quarter notes per minute, in ms."""
    return NOTES[note] * 4 * 60000.0 / bpm


class Delay(Effect):
    """Echo delay with feedback, a high-cut in the feedback loop, tempo sync and ping-pong.

    Args:
        note: a key of ``NOTES`` ("1/4", "1/8d", "1/8t"...): the delay is that note at
            ``bpm`` and ``time_ms`` is ignored. ``None``: the delay is ``time_ms``.
        ping_pong: echoes alternate between channels (input summed to mono into the first).
    """

    type_name = "delay"
    mix_default = 0.35
    category = "time"
    params = (
        Param("time_ms", "ms", 10.0, 2000.0, 350.0, scale="log", ramp_ms=0.0,
              doc="delay time (when no note is set); changes crossfade"),
        Param("bpm", "BPM", 40.0, 300.0, 120.0, ramp_ms=0.0, doc="tempo for the note value"),
        Param("feedback", "", 0.0, 0.95, 0.35, doc="level of each repeat relative to the one before"),
        Param("high_cut_hz", "Hz", 500.0, 20000.0, 6000.0, scale="log",
              doc="low-pass corner in the feedback loop (each repeat darker)"),
    )
    fields = {
        "note": {"type": ["string", "null"], "enum": [*NOTES, None]},
        "ping_pong": {"type": "boolean"},
    }
    example_args = {}

    def __init__(self, note: str | None = None, ping_pong: bool = False, **values: float) -> None:
        if note is not None and note not in NOTES:
            raise ValueError(f"delay: note = {note!r}; choose one of {', '.join(NOTES)}")
        if not isinstance(ping_pong, bool):
            raise ValueError(f"delay: ping_pong must be true or false, got {ping_pong!r}")
        self.note, self.ping_pong = note, ping_pong
        super().__init__(**values)

    def delay_ms(self) -> float:
        """The delay the current parameter values ask for, in ms."""
        if self.note is None:
            return self.value("time_ms")
        return note_ms(self.note, self.value("bpm"))

    @property
    def tail_seconds(self) -> float:
        """Until the repeats fall 60 dB: ``1 + 3 / -log10(feedback)`` delays (ping-pong: the
        same repeats alternate sides)."""
        feedback = self.get("feedback")
        repeats = 1 + (3 / -math.log10(feedback) if feedback > 0 else 0)
        return repeats * self.delay_ms() * 1e-3

    def _delay_samples(self) -> float:
        return self.delay_ms() * 1e-3 * self.spec.samplerate

    def _delay_range_ms(self) -> tuple[float, float]:
        """The shortest and the longest delay the parameters allow, in ms."""
        if self.note is None:
            time = next(p for p in self.params if p.name == "time_ms")
            return time.minimum, time.maximum
        bpm = next(p for p in self.params if p.name == "bpm")
        return note_ms(self.note, bpm.maximum), note_ms(self.note, bpm.minimum)

    def _prepare(self, spec: ProcessSpec) -> None:
        shortest, longest = (ms * 1e-3 * spec.samplerate for ms in self._delay_range_ms())
        self._line = DelayLine(spec.channels, longest, spec.blocksize, spec.device, INTERPOLATION, ring=spec.capture)
        chunk = min(spec.blocksize, LOOP_CHUNK)
        self._fused = spec.capture and fused.available(spec.device)  # one kernel: fused_lines.echo
        if spec.capture:  # the same sub-blocks every block, reading both heads
            chunk = min(chunk, math.floor(shortest) - self._line.min_delay)
            self._heads = SteadyReads(self._line, 2, chunk)
        self._lowpass = OnePoleLowpass(spec.channels, chunk, spec.device)
        f32 = dict(device=spec.device, dtype=spec.dtype)
        self._echoes = torch.empty(spec.channels, spec.blocksize, **f32)
        self._other = torch.empty(spec.channels, chunk, **f32)
        self._filtered = torch.empty(spec.channels, chunk, **f32)
        self._loop_in = torch.empty(spec.channels, chunk, **f32)
        self._fade = Control(spec.blocksize, spec.device)  # per sample: the next head's share
        self._fade_steps = np.arange(1, spec.blocksize + 1, dtype=np.float64)
        self._feedback_ramp = LinearRamp(spec.blocksize, spec.device)
        self._fade_frames = max(1, round(FADE_MS * 1e-3 * spec.samplerate))
        self._chunk = chunk
        self._views: dict[int, tuple] = {}  # buffer views by sub-block length, made on first use
        self._pieces: dict[int, tuple] = {}  # capture mode: sub-block bounds by block length
        self._reset()

    def _reset(self) -> None:
        self._line.reset()
        self._lowpass.reset()
        self._head = self._delay_samples()  # the delay being read
        self._next_head = self._head  # the delay faded in while ``_faded < _fade_frames``
        self._faded = self._fade_frames
        self._feedback = self.value("feedback")

    def _update(self) -> None:
        self._lowpass.set_pole(lowpass_pole(self.value("high_cut_hz"), self.spec.samplerate))

    def _control(self, frames: int) -> None:
        self._line.advance(frames)
        start, self._feedback = self._feedback, self.value("feedback")
        self._feedback_ramp.set(start, self._feedback, frames)  # per sample: a stepped gain would zip
        self._move_heads(frames)
        if self.spec.capture:
            self._heads.set((self._head, self._next_head))
            self._lowpass.build(self._chunk)

    def _move_heads(self, frames: int) -> None:
        """At a block's start: once a fade has ended, fade to a new delay if one was asked
        for; write the fade of the block's samples while fading."""
        if self._faded == self._fade_frames:
            self._head = self._next_head
            self._next_head = self._delay_samples()
            if self._next_head != self._head:
                self._faded = 0
        self._fading = self._faded < self._fade_frames
        if self._fading:
            fade = self._fade.values[:frames]
            np.add(self._fade_steps[:frames], self._faded, out=fade, casting="unsafe")
            np.minimum(fade / self._fade_frames, 1.0, out=fade, casting="unsafe")
            self._fade.commit()
            self._faded = min(self._faded + frames, self._fade_frames)

    def _blends(self, frames: int) -> bool:
        return self._fused

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        if self._fused:
            return fused_lines.echo(self, x, self._echoes[:, :frames], self.blend_ramp(frames))
        if self.spec.capture:
            return self._process_pieces(x)
        reach = math.floor(min(self._head, self._next_head)) - self._line.min_delay
        done = 0
        while done < frames:
            step = min(frames - done, reach, self._chunk)
            if step == frames:  # the whole block at once: no slicing
                part, wet = x, self._buffers(frames)[0]
            else:
                part, wet = x[:, done : done + step], self._echoes[:, done : done + step]
            start = self._line.start + done
            self._line.read_fixed(start, self._head, step, wet)
            if self._fading:
                other = self._line.read_fixed(start, self._next_head, step, self._other)
                wet.lerp_(other, self._fade.tensor[done : done + step])
            self._feed(part, wet, done)
            done += step
        return self._buffers(frames)[0]

    def _process_pieces(self, x: torch.Tensor) -> torch.Tensor:
        """Capture mode: both heads, crossfaded, in the same sub-blocks every block."""
        frames = x.shape[-1]
        pieces = self._pieces.get(frames)
        if pieces is None:
            pieces = self._pieces[frames] = tuple(
                (begin, min(begin + self._chunk, frames)) for begin in range(0, frames, self._chunk))
        fade = self._fade.tensor
        for begin, end in pieces:
            heads = self._heads.read(begin, end - begin)
            wet = torch.lerp(heads[:, 0], heads[:, 1], fade[begin:end], out=self._echoes[:, begin:end])
            self._feed(x[:, begin:end], wet, begin)
        return self._buffers(frames)[0]

    def _buffers(self, frames: int) -> tuple:
        """Views ``[:, :frames]`` of the echoes, low-passed and loop input buffers."""
        views = self._views.get(frames)
        if views is None:
            views = self._views[frames] = (
                self._echoes[:, :frames], self._filtered[:, :frames], self._loop_in[:, :frames])
        return views

    def _feed(self, x: torch.Tensor, wet: torch.Tensor, begin: int) -> None:
        """Write input plus the filtered feedback of ``wet`` at the block's sample ``begin``."""
        frames = x.shape[-1]
        _, filtered, loop_in = self._buffers(frames)
        fed_back = self._lowpass.process(wet, filtered).mul_(self._feedback_ramp.tensor[begin : begin + frames])
        if self.ping_pong:
            loop_in[1:].copy_(fed_back[:-1])
            torch.mean(x, dim=0, out=loop_in[0])
            loop_in[0].add_(fed_back[-1])
        else:
            torch.add(x, fed_back, out=loop_in)
        self._line.write_at(loop_in, begin)

    def _preset_fields(self) -> dict:
        fields = {} if self.note is None else {"note": self.note}
        if self.ping_pong:
            fields["ping_pong"] = True
        return fields
