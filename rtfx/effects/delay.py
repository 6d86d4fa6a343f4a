"""Echo delay: feedback with a high-cut in the loop, tempo sync, ping-pong.

Signal flow per channel (``D`` the delay, ``LP`` a one-pole low-pass)::

    wet[n]  = line[n - D]
    line[n] = x[n] + feedback * LP(wet)[n]

so the first echo is the input itself and each repeat is darker. With ``ping_pong`` the input
(summed to mono) enters the first channel only and the feedback moves each channel's echo to
the next channel (L -> R -> L in stereo), so the echoes alternate sides.

The loop is computed in sub-blocks no longer than the delay (minus the interpolator's reach):
within one, every read touches only samples written before it, so a sub-block is a few
vector operations (two slices per read head, one matmul for the low-pass).

Time changes crossfade between two read heads over ``FADE_MS`` (the new head starts at the new
delay; the old one fades out). We chose a crossfade over a slewed read position: a slew bends
the pitch of everything in the line (a tape effect, and a sweep from 10 ms to 2 s would sound
like a siren), while a crossfade keeps every echo at its pitch and lands on the new time in a
fixed, short time. A change arriving during a fade waits for it to end.
"""
from __future__ import annotations

import math

import torch

from ..effect import Effect
from ..kernels.delayline import DelayLine
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

    def _delay_samples(self) -> float:
        return self.delay_ms() * 1e-3 * self.spec.samplerate

    def _prepare(self, spec: ProcessSpec) -> None:
        bpm = next(p for p in self.params if p.name == "bpm")
        longest = 2000.0 if self.note is None else note_ms(self.note, bpm.minimum)
        self._line = DelayLine(spec.channels, longest * 1e-3 * spec.samplerate, spec.blocksize,
                               spec.device, INTERPOLATION)
        chunk = min(spec.blocksize, LOOP_CHUNK)
        self._lowpass = OnePoleLowpass(spec.channels, chunk, spec.device)
        f32 = dict(device=spec.device, dtype=spec.dtype)
        self._echoes = torch.empty(spec.channels, spec.blocksize, **f32)
        self._other = torch.empty(spec.channels, chunk, **f32)
        self._filtered = torch.empty(spec.channels, chunk, **f32)
        self._loop_in = torch.empty(spec.channels, chunk, **f32)
        self._fade = torch.empty(chunk, **f32)
        self._steps = torch.arange(1, spec.blocksize + 1, **f32)
        self._feedback_ramp = torch.empty(spec.blocksize, **f32)
        self._fade_frames = max(1, round(FADE_MS * 1e-3 * spec.samplerate))
        self._chunk = chunk
        self._views: dict[int, tuple] = {}  # buffer views by sub-block length, made on first use
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

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        self._line.reserve(frames)
        start, self._feedback = self._feedback, self.value("feedback")
        feedback = self._feedback  # a ramp per sample while it moves: a stepped gain would zip
        if start != feedback:
            ramp = torch.mul(self._steps[:frames], (feedback - start) / frames, out=self._feedback_ramp[:frames])
            feedback = ramp.add_(start)
        done = 0
        while done < frames:
            if self._faded == self._fade_frames:
                self._head = self._next_head
                self._next_head = self._delay_samples()
                if self._next_head != self._head:
                    self._faded = 0
            fading = self._faded < self._fade_frames
            reach = math.floor(min(self._head, self._next_head)) - self._line.min_delay
            step = min(frames - done, reach, self._chunk)
            if fading:
                step = min(step, self._fade_frames - self._faded)
            gain = feedback if isinstance(feedback, float) else feedback[done : done + step]
            if step == frames:  # the whole block at once: no slicing
                self._loop(x, self._buffers(frames)[0], fading, gain)
            else:
                self._loop(x[:, done : done + step], self._echoes[:, done : done + step], fading, gain)
            done += step
        return self._buffers(frames)[0]

    def _buffers(self, frames: int) -> tuple:
        """Views ``[:, :frames]`` of the echoes, other head, low-passed and loop input buffers,
        and ``[:frames]`` of the fade and its steps."""
        views = self._views.get(frames)
        if views is None:
            views = self._views[frames] = (
                self._echoes[:, :frames], self._other[:, :frames], self._filtered[:, :frames],
                self._loop_in[:, :frames], self._fade[:frames], self._steps[:frames])
        return views

    def _loop(self, x: torch.Tensor, wet: torch.Tensor, fading: bool, feedback) -> None:
        """One sub-block: read the head(s) into ``wet``, write input plus filtered feedback."""
        frames = x.shape[-1]
        _, other, filtered, loop_in, fade, steps = self._buffers(frames)
        start = self._line.now
        self._line.read_fixed(start, self._head, frames, wet)
        if fading:
            self._line.read_fixed(start, self._next_head, frames, other)
            begin, end = self._faded / self._fade_frames, (self._faded + frames) / self._fade_frames
            torch.mul(steps, (end - begin) / frames, out=fade)
            wet.add_(other.sub_(wet).mul_(fade.add_(begin)))
            self._faded += frames
        fed_back = self._lowpass.process(wet, filtered).mul_(feedback)
        if self.ping_pong:
            loop_in[1:].copy_(fed_back[:-1])
            torch.mean(x, dim=0, out=loop_in[0])
            loop_in[0].add_(fed_back[-1])
        else:
            torch.add(x, fed_back, out=loop_in)
        self._line.write(loop_in)

    def _preset_fields(self) -> dict:
        fields = {} if self.note is None else {"note": self.note}
        if self.ping_pong:
            fields["ping_pong"] = True
        return fields
