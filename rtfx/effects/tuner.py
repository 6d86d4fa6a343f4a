"""A tuner: pitch detection on the input (McLeod's NSDF), the signal passes through untouched.

Every ``hop`` samples of absolute stream time (1024 at 48 kHz), the last ``window`` samples
(4096 at 48 kHz; both scale with the rate in powers of two) are analysed, whatever the block
partition; the reading depends only on the samples, never on where the blocks fell.

The method (McLeod & Wyvill 2005, "A smarter way to find pitch"), with x the window, all
channels together, and W its length:

    r(tau) = sum_c sum_{j < W - tau} x_c[j] x_c[j + tau]          (autocorrelation, by FFT)
    m(tau) = sum_c sum_{j < W - tau} x_c[j]^2 + x_c[j + tau]^2    (energy, by a cumulative sum)
    n(tau) = 2 r(tau) / m(tau)                                     (NSDF, in [-1, 1])

``n`` is 1 at a lag that repeats the signal exactly. In every positive lobe of ``n`` after the
first (the one around lag 0) the highest point is a key maximum; the first key maximum within
``0.9`` of the highest is the period (the factor keeps a strong later lobe from turning a note
into its lower octave). A parabola through that point and its neighbours gives the period to a
fraction of a sample and the peak height, the *clarity*. A window quieter than
``SILENCE_DBFS`` or less clear than ``MIN_CLARITY`` reads as no pitch.

Everything is tensor ops of fixed shape into preallocated buffers (no per-sample Python, no
host sync; the FFT library may still take scratch memory of its own). The input is kept in a
ring of the last ``window + hop`` frames or more. Normally only a block that crosses a hop
boundary runs an analysis. With ``spec.capture`` every block analyses the window ending at the
latest boundary (until the next one, the same window again: the same reading), its position
in the ring held in a device tensor, so that a CUDA graph replays the same kernels each block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..controls import Control
from ..effect import Effect
from ..kernels.fdn import DelayLines
from ..params import Param
from ..spec import ProcessSpec

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: Lowest and highest detected fundamentals, Hz (a bass's low E1 is 41.2 Hz; E6 is 1319 Hz).
MIN_HZ, MAX_HZ = 40.0, 2000.0
#: A key maximum within this fraction of the highest one may be the period (McLeod's k).
PEAK_RATIO = 0.9
#: Below this NSDF peak height the window reads as no pitch (white noise peaks near 0.1).
MIN_CLARITY = 0.8
#: Below this RMS level (dBFS) the window reads as silence.
SILENCE_DBFS = -65.0


@dataclass(frozen=True)
class TunerReading:
    """One pitch reading.

    ``frequency_hz``, ``note`` (``"C"``...``"B"``, sharps), ``octave`` (scientific: A4 = 440
    Hz) and ``cents`` (deviation from the nearest equal-tempered note, -50..+50, against
    ``reference_hz``) are None when there is no pitch (silence, noise, chords without a clear
    common period). ``clarity`` is the NSDF peak (0..1), ``level_dbfs`` the window's RMS level
    and ``frame`` the absolute frame index at which the analysed window ends.
    """

    has_pitch: bool
    frequency_hz: float | None
    note: str | None
    octave: int | None
    cents: float | None
    clarity: float
    level_dbfs: float
    frame: int


def name_pitch(frequency_hz: float, reference_hz: float = 440.0) -> tuple[str, int, float]:
    """``(note, octave, cents)`` of a frequency: the nearest equal-tempered note and the offset."""
    midi = 69 + 12 * math.log2(frequency_hz / reference_hz)
    nearest = round(midi)
    return NOTE_NAMES[nearest % 12], nearest // 12 - 1, 100 * (midi - nearest)


class NsdfPitch:
    """McLeod pitch of fixed-size windows, written into a small result tensor.

    All buffers are allocated here; ``analyse`` only runs fixed-shape ops into them.

    Args:
        window: W, frames per analysed window.
        channels: channels per window (their NSDFs are pooled).
        samplerate: Hz.
        device: where the windows live.
    """

    def __init__(self, window: int, channels: int, samplerate: float, device: torch.device) -> None:
        w, c, f32 = window, channels, torch.float32
        self.window, self.samplerate = w, samplerate
        min_lag = max(2, math.floor(samplerate / MAX_HZ))
        max_lag = min(w // 2, math.ceil(samplerate / MIN_HZ))
        lags = max_lag + 2  # n(tau) for tau = 0 .. max_lag + 1 (the parabola's right point)

        def empty(*shape, dtype=f32):
            return torch.empty(*shape, device=device, dtype=dtype)

        # n(tau)
        self._padded = torch.zeros(c, 2 * w, device=device, dtype=f32)  # window, then W zeros
        self._spectrum = empty(c, w + 1, dtype=torch.complex64)
        self._spectrum_sq, self._power_c, self._power = empty(c, w + 1, 2), empty(c, w + 1), empty(w + 1)
        self._acf, self._squares, self._squares_sum = empty(2 * w), empty(c, w), empty(w)
        self._energy = torch.zeros(w + 1, device=device, dtype=f32)  # [0, cumulative energy]
        self._reversed = torch.arange(w, w - lags, -1, device=device)  # W - tau
        self._m, self._nsdf = empty(lags), empty(lags)
        # Key maxima.
        self._positive, self._positive_f = empty(lags, dtype=torch.bool), empty(lags)
        self._rise = torch.ones(lags, device=device, dtype=f32)  # rise[0] stays 1: lag 0 opens lobe 1
        self._lobe_f, self._lobe = empty(lags), empty(lags, dtype=torch.long)
        self._lobe_top, self._top_here, self._score = empty(lags + 1), empty(lags), empty(lags)
        self._minus_one = torch.tensor(-1.0, device=device)
        self._mask, self._flag = empty(lags, dtype=torch.bool), empty(lags, dtype=torch.bool)
        self._mask_u8 = empty(lags, dtype=torch.uint8)
        self._lag_ok = torch.zeros(lags, device=device, dtype=torch.bool)
        self._lag_ok[min_lag : max_lag + 1] = True
        # The peak and its parabola.
        self._peak, self._three = empty((), dtype=torch.long), empty(3, dtype=torch.long)
        self._offsets = torch.tensor([-1, 0, 1], device=device)
        self._y, self._tmp, self._ok = empty(3), empty(6), empty(3, dtype=torch.bool)

    def analyse(self, window: torch.Tensor, result: torch.Tensor) -> None:
        """Pitch of ``window`` ``(channels, W)`` into ``result`` ``(4,)``: frequency in Hz,
        clarity, RMS level, has pitch (0 or 1)."""
        total = self._nsdf_of(window)
        best = self._first_key_maximum()
        w, c = self.window, window.shape[0]
        # Parabola through the peak and its neighbours: offset d in [-1, 1] and height.
        torch.add(self._offsets, self._peak, out=self._three).clamp_(0, self._nsdf.shape[0] - 1)
        torch.gather(self._nsdf, 0, self._three, out=self._y)
        left, top, right = self._y[0], self._y[1], self._y[2]
        curvature = torch.sub(left, top, out=self._tmp[0]).add_(right).sub_(top).clamp_(max=-1e-12)
        slope = torch.sub(left, right, out=self._tmp[1])
        d = torch.div(slope, curvature, out=self._tmp[2]).mul_(0.5).clamp_(-1, 1)
        period = torch.add(self._peak, d, out=self._tmp[3]).clamp_(min=1)
        clarity = slope.mul_(d).mul_(-0.25).add_(top).clamp_(max=1)
        result[0].copy_(period).reciprocal_().mul_(self.samplerate)
        result[1].copy_(clarity)
        result[2].copy_(total).div_(w * c).sqrt_()
        torch.ge(clarity, MIN_CLARITY, out=self._ok[0])
        torch.gt(best, 0, out=self._ok[1])
        torch.ge(total, (10 ** (SILENCE_DBFS / 20)) ** 2 * w * c, out=self._ok[2])
        result[3].copy_(self._ok[0]).mul_(self._ok[1]).mul_(self._ok[2])

    def _nsdf_of(self, window: torch.Tensor) -> torch.Tensor:
        """Fill ``self._nsdf`` with n(tau); return the window's total energy (a 0-d view)."""
        w, lags = self.window, self._nsdf.shape[0]
        # r(tau): inverse FFT of the power spectrum summed over channels (zero-padded to 2W).
        self._padded[:, :w].copy_(window)
        torch.fft.rfft(self._padded, out=self._spectrum)
        spectrum = torch.view_as_real(self._spectrum)
        torch.mul(spectrum, spectrum, out=self._spectrum_sq)
        torch.sum(self._spectrum_sq, dim=2, out=self._power_c)
        torch.sum(self._power_c, dim=0, out=self._power)
        torch.fft.irfft(self._power, n=2 * w, out=self._acf)
        # m(tau) = E[W] - E[tau] + E[W - tau], with E the cumulative energy (E[0] = 0).
        torch.mul(window, window, out=self._squares)
        torch.sum(self._squares, 0, out=self._squares_sum)
        torch.cumsum(self._squares_sum, 0, out=self._energy[1:])
        total = self._energy[w]
        torch.index_select(self._energy, 0, self._reversed, out=self._m)
        self._m.sub_(self._energy[:lags]).add_(total).clamp_(min=1e-20)
        torch.div(self._acf[:lags], self._m, out=self._nsdf).mul_(2)
        return total

    def _first_key_maximum(self) -> torch.Tensor:
        """Put the lag of the period in ``self._peak``; return the highest key maximum (-1: none)."""
        nsdf = self._nsdf
        # Lobes: number the runs of positive n(tau) (lobe 1 holds lag 0); the top of each lobe.
        torch.gt(nsdf, 0, out=self._positive)
        self._positive_f.copy_(self._positive)
        torch.sub(self._positive_f[1:], self._positive_f[:-1], out=self._rise[1:]).clamp_(min=0)
        torch.cumsum(self._rise, 0, out=self._lobe_f)
        self._lobe.copy_(self._lobe_f)
        torch.where(self._positive, nsdf, self._minus_one, out=self._score)
        self._lobe_top.fill_(-1.0).scatter_reduce_(0, self._lobe, self._score, "amax")
        # Key maxima: tops of positive lobes after the first, within the lag range.
        torch.gather(self._lobe_top, 0, self._lobe, out=self._top_here)
        torch.eq(self._score, self._top_here, out=self._mask)
        self._mask.logical_and_(self._positive).logical_and_(self._lag_ok)
        self._mask.logical_and_(torch.gt(self._lobe, 1, out=self._flag))
        self._score.masked_fill_(self._mask.logical_not_(), -1.0)
        # The first key maximum within PEAK_RATIO of the highest.
        best = torch.amax(self._score, 0, out=self._tmp[4])
        torch.ge(self._score, torch.mul(best, PEAK_RATIO, out=self._tmp[5]), out=self._mask)
        torch.argmax(self._mask_u8.copy_(self._mask), 0, out=self._peak)
        return best


class Tuner(Effect):
    """Pitch detection (McLeod NSDF) for tuning; the audio passes through unchanged.

    ``reading()`` (any thread) returns the latest ``TunerReading``. Params: ``reference_hz``,
    the frequency of A4 that notes and cents are named against.
    """

    type_name = "tuner"
    category = "analysis"
    params = (
        Param("reference_hz", "Hz", 415.0, 466.0, 440.0, ramp_ms=0.0, doc="concert pitch: the frequency of A4"),
    )

    # -- audio thread ----------------------------------------------------------------------
    def _prepare(self, spec: ProcessSpec) -> None:
        scale = 2 ** max(0, round(math.log2(spec.samplerate / 48000)))
        self.window, self.hop = 4096 * scale, 1024 * scale
        self._pitch = NsdfPitch(self.window, spec.channels, spec.samplerate, spec.device)
        # The input; the window ending at the latest hop boundary always lies in it.
        self._ring = DelayLines(spec.channels, self.window + self.hop, max(self.window, spec.blocksize),
                                spec.device, spec.capture)
        self._window = torch.empty(spec.channels, self.window, device=spec.device, dtype=spec.dtype)
        self._window_start = Control(1, spec.device, torch.int64)  # capture: its first frame in the ring
        self._window_end = Control(1, spec.device, torch.float64)  # the absolute frame at which it ends
        # The reading: [frequency Hz, clarity, RMS level, has pitch (0/1), frame at which the
        # window ends]. The analysis works in `_result` (on the device); one copy publishes it to
        # `_published` on the host (pinned memory, asynchronous, on a GPU), which readers read:
        # they never see a half-done analysis.
        self._result = torch.zeros(5, device=spec.device, dtype=torch.float64)
        self._numbers, self._end = self._result[:4], self._result[4:]
        self._published = torch.zeros(5, dtype=torch.float64, pin_memory=spec.device.type == "cuda")
        self._reset()

    def _reset(self) -> None:
        self._ring.reset()
        self._result.zero_()
        self._published.zero_()
        self._frame = 0  # absolute index of the next input frame
        self._boundary = None  # the latest hop boundary the controls were written for

    def _control(self, frames: int) -> None:
        self._ring.before_block(frames)
        end = self._frame + frames
        boundary = end // self.hop * self.hop  # the latest hop boundary, at or before the block's end
        self._due = boundary > self._frame  # it lies inside this block: a new window
        if boundary != self._boundary:
            self._boundary = boundary
            self._window_end.set(boundary)
            self._window_start.set((boundary - self.window) % self._ring.length)
        self._frame = end

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        self._ring.write(x)
        if self._due or self.spec.capture:
            self._pitch.analyse(self._latest_window(), self._numbers)
            self._end.copy_(self._window_end.tensor)
            self._published.copy_(self._result, non_blocking=True)
        return x

    def _latest_window(self) -> torch.Tensor:
        """The ``(channels, window)`` frames up to the latest hop boundary (a view or ``_window``)."""
        if self.spec.capture:
            return self._ring.read_at(self._window_start.tensor, self._window)
        return self._ring.read_whole(self._ring.t0 + self.window - self._boundary, self._window)

    # -- any thread --------------------------------------------------------------------------
    def reading(self) -> TunerReading:
        """The latest reading (any thread; copies 5 numbers, never waits for the GPU).

        Before ``prepare`` and before the first analysis it reads as no pitch. On a GPU it is
        the analysis whose copy has landed (at most a block late). A read that races the
        publishing copy itself may mix numbers of two consecutive analyses (each number whole).
        """
        published = getattr(self, "_published", None)
        if published is None:
            return TunerReading(False, None, None, None, None, 0.0, -math.inf, 0)
        frequency, clarity, rms, has_pitch, frame = published.tolist()
        level = 20 * math.log10(rms) if rms > 0 else -math.inf
        if not has_pitch:
            return TunerReading(False, None, None, None, None, clarity, level, int(frame))
        note, octave, cents = name_pitch(frequency, self.get("reference_hz"))
        return TunerReading(True, frequency, note, octave, cents, clarity, level, int(frame))
