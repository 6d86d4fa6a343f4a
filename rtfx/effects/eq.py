"""Equalisers: a parametric EQ of 1-8 bands, a one-knob tilt EQ, a ten-band graphic EQ.

All are ``SosEffect``s, so a chain may fuse them with neighbouring filters into one kernel.
The number of sections is fixed by the construction fields (band kinds and slopes), never by
a ramped parameter.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.signal

from ..design import biquad_sections, design_biquad
from ..zpk_design import IIRDesigner
from ..params import Param
from ..spec import ProcessSpec
from .sos_effect import SosEffect

MAX_BANDS = 8
BAND_KINDS = ("peaking", "lowshelf", "highshelf", "notch", "bandpass", "highpass", "lowpass")
#: Slopes of the highpass/lowpass bands in dB per octave: Butterworth of order slope / 6.
SLOPES_DB = (6, 12, 18, 24, 36, 48)
BUTTERWORTH_Q = 1 / math.sqrt(2)
#: Default band frequencies, one octave apart.
DEFAULT_FREQS_HZ = (62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


def band_params(index: int) -> tuple[Param, ...]:
    """The declared parameters of band ``index`` (1-based): ``b{index}_freq_hz`` and so on."""
    prefix = f"b{index}_"
    return (
        Param(prefix + "freq_hz", "Hz", 20.0, 20000.0, DEFAULT_FREQS_HZ[index - 1], scale="log",
              doc=f"band {index} centre or corner frequency"),
        Param(prefix + "gain_db", "dB", -24.0, 24.0, 0.0, doc=f"band {index} gain (peaking, shelves)"),
        Param(prefix + "q", "", 0.1, 18.0, 0.7071, scale="log",
              doc=f"band {index} quality factor (high/low pass: corner resonance, 0.7071 flat)"),
    )


def butterworth_qs(order: int) -> list[float]:
    """Q of each second-order section of a Butterworth filter of ``order``, lowest first.

    The analog poles sit at angles ``phi_k = (2k - 1 + order % 2) pi / (2 order)`` from the
    negative real axis (plus one real pole for odd orders); a conjugate pair at ``phi`` is a
    section with ``Q = 1 / (2 cos phi)``.
    """
    odd = order % 2
    return [1 / (2 * math.cos((2 * k - 1 + odd) * math.pi / (2 * order))) for k in range(1, order // 2 + 1)]


def design_pass(kind: str, slope_db: int, freq_hz, samplerate: float, q) -> np.ndarray:
    """A highpass or lowpass of ``slope_db`` dB/octave as sections ``(S, N, 6)`` for arrays of
    ``freq_hz`` and ``q``: Butterworth when ``q = 0.7071``; other ``q`` scale the highest-Q
    section (a resonant corner).

    Each pole pair is an RBJ biquad at ``freq_hz`` (bilinear transform prewarped at the corner,
    as ``scipy.signal.butter`` does), so the cascade is exactly the Butterworth design.
    """
    order = slope_db // 6
    qs = butterworth_qs(order)
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    sections = [biquad_sections(kind, freq_hz, samplerate, section_q * (q / BUTTERWORTH_Q if k == len(qs) - 1 else 1.0))
                for k, section_q in enumerate(qs)]
    if order % 2:
        sections.append(IIRDesigner("butter", kind, 1).sections(samplerate, freq_hz))
    return np.concatenate(sections, axis=1)


def clamp_below_nyquist(freq_hz, samplerate: float):
    """``freq_hz`` (a number or an array) limited to 0.49 of the sample rate (a 20 kHz band at
    32 kHz sits at 15.7 kHz)."""
    return np.minimum(freq_hz, 0.49 * samplerate)


class ParametricEQ(SosEffect):
    """A parametric EQ: up to 8 bands, each a peaking, shelf, notch, band or high/low pass.

    Args:
        bands: list of band kinds (``"peaking"``...) or objects ``{"kind": ..., "slope_db": ...}``;
            ``slope_db`` (6, 12, 18, 24, 36, 48 dB/octave; default 12) is for highpass/lowpass
            bands: Butterworth of order ``slope_db / 6`` at ``q = 0.7071``, a resonant corner
            above (see ``design_pass``).
        b1_freq_hz, b1_gain_db, b1_q, ...: band parameters (ramped); ``params`` lists those of
            the bands in use. ``gain_db`` is used by peaking and shelf bands only.

    Frequencies above 0.49 of the sample rate are designed at 0.49 of it.
    """

    type_name = "parametric_eq"
    category = "eq"
    params = tuple(p for i in range(1, MAX_BANDS + 1) for p in band_params(i))
    fields = {
        "bands": {
            "type": "array", "minItems": 1, "maxItems": MAX_BANDS,
            "items": {"anyOf": [
                {"type": "string", "enum": list(BAND_KINDS)},
                {"type": "object", "required": ["kind"], "additionalProperties": False, "properties": {
                    "kind": {"type": "string", "enum": list(BAND_KINDS)},
                    "slope_db": {"type": "integer", "enum": list(SLOPES_DB)},
                }},
            ]},
        },
    }
    # Eight bands, so that every declared parameter exists on the example instance.
    example_args = {
        "bands": [{"kind": "highpass", "slope_db": 24}, "lowshelf", "peaking", "notch", "peaking",
                  "bandpass", "highshelf", {"kind": "lowpass", "slope_db": 12}],
    }

    def __init__(self, bands=("lowshelf", "peaking", "peaking", "highshelf"), **values: float) -> None:
        self.bands = [self._check_band(i, band) for i, band in enumerate(bands, 1)]
        if not 1 <= len(self.bands) <= MAX_BANDS:
            raise ValueError(f"{self.type_name}: bands has {len(self.bands)} entries; give 1 to {MAX_BANDS}")
        self.params = type(self).params[: 3 * len(self.bands)]  # the bands in use
        self._still: dict[int, tuple] = {}  # band -> (its values, its sections) while they hold still
        super().__init__(**values)

    def _check_band(self, index: int, band) -> tuple[str, int]:
        """``(kind, slope_db)`` of one entry of ``bands``; ``ValueError`` naming the band."""
        where = f"{self.type_name}: band {index}"
        if isinstance(band, str):
            band = {"kind": band}
        if not isinstance(band, dict) or set(band) - {"kind", "slope_db"}:
            raise ValueError(f"{where} must be a kind or an object with \"kind\" (and \"slope_db\"), got {band!r}")
        kind, slope = band.get("kind"), band.get("slope_db", 12)
        if kind not in BAND_KINDS:
            raise ValueError(f"{where}: kind = {kind!r}; choose one of {', '.join(BAND_KINDS)}")
        if slope not in SLOPES_DB or (slope != 12 and kind not in ("highpass", "lowpass")):
            raise ValueError(f"{where}: slope_db = {slope!r}; highpass/lowpass bands take one of "
                             f"{', '.join(map(str, SLOPES_DB))} dB/octave, other kinds none")
        return kind, int(slope)

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Every band for S steps; a band whose values hold still over the steps is designed
        once (and kept while they stay: a knob turns one band at a time)."""
        steps = len(values["b1_freq_hz"])
        sections = []
        for i, band in enumerate(self.bands, 1):
            freq, q, gain = (values[f"b{i}_{name}"] for name in ("freq_hz", "q", "gain_db"))
            if (freq == freq[0]).all() and (q == q[0]).all() and (gain == gain[0]).all():
                key = (freq[0], q[0], gain[0])
                if self._still.get(i, (None,))[0] != key:
                    self._still[i] = (key, self._design_band(band, freq[:1], q[:1], gain[:1]))
                sections.append(self._still[i][1])  # (1, n, 6): concatenate repeats it below
            else:
                sections.append(self._design_band(band, freq, q, gain))
        return np.concatenate([band if len(band) == steps else band.repeat(steps, axis=0) for band in sections], axis=1)

    def _design_band(self, band: tuple[str, int], freq, q, gain) -> np.ndarray:
        """One band's sections ``(S, n, 6)`` for ``(S,)`` arrays of its values."""
        (kind, slope), rate = band, self.spec.samplerate
        freq = clamp_below_nyquist(freq, rate)
        if kind in ("highpass", "lowpass"):
            return design_pass(kind, slope, freq, rate, q)
        return biquad_sections(kind, freq, rate, q, gain)

    def _preset_fields(self) -> dict:
        bands = [kind if slope == 12 else {"kind": kind, "slope_db": slope} for kind, slope in self.bands]
        return {"bands": bands}


def tilt_sections(tilt_db, pivot_hz, samplerate: float) -> np.ndarray:
    """First-order tilts ``(S, 1, 6)``: ``-tilt_db / 2`` at DC, ``+tilt_db / 2`` at high
    frequencies, 0 dB at the pivot, for arrays of ``tilt_db`` and ``pivot_hz``.

    Analog prototype ``H(s) = r (s + w/r) / (s + w r)`` with ``r = 10 ** (tilt_db / 40)``: the
    zero and pole sit a factor ``r`` below and above the pivot ``w``, so ``|H(jw)| = 1``,
    ``H(0) = 1/r`` and ``H(inf) = r``. Bilinear transform, prewarped at the pivot.
    """
    r = 10 ** (np.atleast_1d(np.asarray(tilt_db, dtype=np.float64)) / 40)
    k = np.tan(np.pi * np.asarray(pivot_hz, dtype=np.float64) / samplerate)  # prewarped, in units of 2 fs
    zero, pole = k / r, k * r
    sos = np.zeros(r.shape + (1, 6))
    sos[:, 0, 0], sos[:, 0, 1] = r * (1 + zero) / (1 + pole), r * (zero - 1) / (1 + pole)
    sos[:, 0, 3], sos[:, 0, 4] = 1.0, (pole - 1) / (1 + pole)
    return sos


class TiltEQ(SosEffect):
    """Tilt EQ: one knob turns the spectrum around a pivot (darker below 0 dB, brighter above).

    ``tilt_db`` is the difference between the highest and the lowest frequencies: half of it
    is added at the top and taken from the bottom, with 0 dB at ``pivot_hz`` (first-order
    shelves, the gentle slope of a mastering tilt).
    """

    type_name = "tilt_eq"
    category = "eq"
    params = (
        Param("tilt_db", "dB", -12.0, 12.0, 0.0, doc="treble minus bass (+: brighter)"),
        Param("pivot_hz", "Hz", 100.0, 5000.0, 800.0, scale="log", doc="frequency left unchanged"),
    )
    example_args = {}

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        rate = self.spec.samplerate
        return tilt_sections(values["tilt_db"], clamp_below_nyquist(values["pivot_hz"], rate), rate)


#: Centres of the graphic EQ's octave bands in Hz (ISO 266 nominal values).
GRAPHIC_BANDS_HZ = (31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
#: Bandwidth of each band's peaking filter, in octaves: wider than the band spacing, so that
#: neighbours overlap smoothly (Valimaki and Liski, "Accurate cascade graphic equalizer", 2017).
GRAPHIC_BANDWIDTH_OCT = 1.5
GRAPHIC_PROTOTYPE_DB = 12.0


def band_label(freq_hz: float) -> str:
    """``31hz``, ``1khz``, ``16khz``: the band's name in its parameter."""
    return f"{freq_hz / 1000:g}khz" if freq_hz >= 1000 else f"{int(freq_hz)}hz"


class GraphicEQ(SosEffect):
    """Ten-band octave graphic EQ (31.5 Hz ... 16 kHz), one peaking filter per band.

    Neighbouring filters overlap, so each filter's gain is solved from all the sliders: with
    the response of every filter at every band centre measured once (``prepare``, at a 12 dB
    prototype gain, in dB per dB), the filter gains are the least-squares solution that puts
    the cascade's response at each centre on its slider (one pass of the method: the response in
    dB is nearly linear in the gains; measured within about 1 dB of the sliders over +-12 dB).
    """

    type_name = "graphic_eq"
    category = "eq"
    params = tuple(
        Param(f"gain_{band_label(f)}_db", "dB", -12.0, 12.0, 0.0, doc=f"gain of the {f:g} Hz octave band")
        for f in GRAPHIC_BANDS_HZ
    )
    example_args = {}

    def _prepare(self, spec: ProcessSpec) -> None:
        rate = spec.samplerate
        self._centres = [clamp_below_nyquist(f, rate) for f in GRAPHIC_BANDS_HZ]
        octaves = 2**GRAPHIC_BANDWIDTH_OCT
        self._q = np.sqrt(octaves) / (octaves - 1)  # Q of an analog peak of that bandwidth
        interaction = np.empty((len(self._centres), len(self._centres)))
        for k, centre in enumerate(self._centres):
            sos = design_biquad("peaking", centre, rate, self._q, GRAPHIC_PROTOTYPE_DB)
            _, h = scipy.signal.sosfreqz(sos, self._centres, fs=rate)
            interaction[:, k] = 20 * np.log10(np.abs(h)) / GRAPHIC_PROTOTYPE_DB
        self._solve = np.linalg.pinv(interaction)
        super()._prepare(spec)

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        sliders = np.stack([values[p.name] for p in self.params], axis=-1)  # (S, bands)
        gains = sliders @ self._solve.T
        rate = self.spec.samplerate
        return np.concatenate(
            [biquad_sections("peaking", f, rate, self._q, gains[:, k]) for k, f in enumerate(self._centres)], axis=1
        )
