"""Filter designs returning second-order sections (float64, ``scipy.signal`` layout).

Classic designs (Butterworth, Chebyshev I/II, elliptic, Bessel; low/high/band pass, band
stop) come from ``scipy.signal``'s analog prototypes through ``rtfx.zpk_design`` (the same
transfer functions as ``scipy.signal.iirfilter``, with a section grouping that stays fixed as
the edges move); the RBJ "Audio EQ Cookbook" biquads are computed here, vectorized over arrays
of parameter values (``biquad_sections``). Every checked entry point raises ``ValueError``
naming the parameter and the allowed range.
"""
from __future__ import annotations

import math

import numpy as np

from .kernels.sos import check_sos
from .zpk_design import IIRDesigner

FAMILIES = ("butter", "cheby1", "cheby2", "ellip", "bessel")
BAND_TYPES = ("lowpass", "highpass", "bandpass", "bandstop")
RBJ_KINDS = ("lowpass", "highpass", "bandpass", "notch", "allpass", "peaking", "lowshelf", "highshelf")


def check_frequency(name: str, freq_hz: float, samplerate: float) -> float:
    """``freq_hz`` if ``0 < freq_hz < samplerate / 2``, else ``ValueError``."""
    nyquist = samplerate / 2
    if not (isinstance(freq_hz, (int, float)) and 0 < freq_hz < nyquist):
        shown = f"{freq_hz:g}" if isinstance(freq_hz, (int, float)) else repr(freq_hz)
        raise ValueError(
            f"{name} = {shown} Hz must be in (0, {nyquist:g}) Hz: above 0 and below "
            f"Nyquist at {samplerate:g} Hz"
        )
    return float(freq_hz)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} = {value!r}; choose one of {', '.join(choices)}")
    return value


def design_iir(
    family: str,
    btype: str,
    order: int,
    cutoff_hz: float,
    samplerate: float,
    high_hz: float | None = None,
    ripple_db: float = 1.0,
    attenuation_db: float = 60.0,
) -> np.ndarray:
    """A classic IIR design as sections.

    Args:
        family: "butter", "cheby1", "cheby2", "ellip" or "bessel".
        btype: "lowpass", "highpass", "bandpass" or "bandstop".
        order: filter order >= 1 (band filters get twice as many poles, as in scipy).
        cutoff_hz: cutoff in Hz (the lower edge for band filters).
        samplerate: in Hz.
        high_hz: upper edge in Hz, band filters only.
        ripple_db: pass-band ripple in dB (cheby1, ellip), > 0.
        attenuation_db: stop-band attenuation in dB (cheby2, ellip), > 0.
    Returns:
        sos array ``(sections, 6)``.
    """
    _check_choice("family", family, FAMILIES)
    _check_choice("btype", btype, BAND_TYPES)
    if int(order) != order or not 1 <= order <= 64:
        raise ValueError(f"order = {order!r} must be a whole number in [1, 64]")
    cutoff_hz = check_frequency("cutoff_hz", cutoff_hz, samplerate)
    if btype in ("bandpass", "bandstop"):
        if high_hz is None:
            raise ValueError(f"high_hz is required for a {btype} (the upper band edge in Hz)")
        high_hz = check_frequency("high_hz", high_hz, samplerate)
        if not high_hz > cutoff_hz:
            raise ValueError(f"high_hz = {high_hz:g} Hz must be above cutoff_hz = {cutoff_hz:g} Hz")
    if not ripple_db > 0:
        raise ValueError(f"ripple_db = {ripple_db!r} must be > 0 dB")
    if not attenuation_db > 0:
        raise ValueError(f"attenuation_db = {attenuation_db!r} must be > 0 dB")
    designer = IIRDesigner(family, btype, int(order), ripple_db, attenuation_db)
    sos = designer.sections(samplerate, cutoff_hz, high_hz if btype in ("bandpass", "bandstop") else None)[0]
    return check_sos(sos, f"{family} {btype} order {order}")


def q_from_bandwidth(bandwidth_oct: float, freq_hz: float, samplerate: float) -> float:
    """Q of an RBJ band filter with ``bandwidth_oct`` octaves between its -3 dB points."""
    if not bandwidth_oct > 0:
        raise ValueError(f"bandwidth_oct = {bandwidth_oct!r} must be > 0 octaves")
    w0 = 2 * math.pi * freq_hz / samplerate
    return 1 / (2 * math.sinh(math.log(2) / 2 * bandwidth_oct * w0 / math.sin(w0)))


def design_biquad(kind: str, freq_hz: float, samplerate: float, q: float = 0.7071, gain_db: float = 0.0) -> np.ndarray:
    """One RBJ cookbook biquad as a ``(1, 6)`` sos array.

    Args:
        kind: lowpass, highpass, bandpass (0 dB peak), notch, allpass, peaking, lowshelf,
            highshelf.
        freq_hz: centre or corner frequency in Hz, in (0, samplerate / 2).
        q: quality factor > 0 (for shelves, the cookbook's Q; 0.7071 is the steepest
            shelf without overshoot).
        gain_db: peak/shelf gain in dB (peaking and shelves only).
    """
    _check_choice("kind", kind, RBJ_KINDS)
    freq_hz = check_frequency("freq_hz", freq_hz, samplerate)
    if not (isinstance(q, (int, float)) and q > 0 and math.isfinite(q)):
        raise ValueError(f"q = {q!r} must be > 0")
    return check_sos(biquad_sections(kind, freq_hz, samplerate, q, gain_db)[0], f"{kind} biquad")


def biquad_sections(kind: str, freq_hz, samplerate: float, q, gain_db=0.0) -> np.ndarray:
    """RBJ biquads for arrays of parameter values (unchecked): ``(S, 1, 6)``, ``a0 = 1``.

    ``freq_hz``, ``q`` and ``gain_db`` broadcast to a common shape ``(S,)``.
    """
    values = [np.asarray(v, dtype=np.float64) for v in (freq_hz, q, gain_db)]
    common = np.zeros(np.broadcast_shapes((1,), *(v.shape for v in values)))  # (np.broadcast_arrays is slow)
    freq_hz, q, gain_db = (v + common for v in values)
    amp = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq_hz / samplerate
    cos_w0, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    one, zero = np.ones_like(w0), np.zeros_like(w0)
    a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    if kind == "lowpass":
        b = [(1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2]
    elif kind == "highpass":
        b = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]
    elif kind == "bandpass":
        b = [alpha, zero, -alpha]
    elif kind == "notch":
        b = [one, -2 * cos_w0, one]
    elif kind == "allpass":
        b = [1 - alpha, -2 * cos_w0, 1 + alpha]
    elif kind == "peaking":
        b = [1 + alpha * amp, -2 * cos_w0, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos_w0, 1 - alpha / amp]
    else:  # shelves: the cookbook's 2*sqrt(A)*alpha term
        root = 2 * np.sqrt(amp) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [
            amp * ((amp + 1) - sign * (amp - 1) * cos_w0 + root),
            sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos_w0),
            amp * ((amp + 1) - sign * (amp - 1) * cos_w0 - root),
        ]
        a = [
            (amp + 1) + sign * (amp - 1) * cos_w0 + root,
            -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos_w0),
            (amp + 1) + sign * (amp - 1) * cos_w0 - root,
        ]
    sos = np.stack(b + a, axis=-1)[:, None, :]
    return sos / sos[..., 3:4]
