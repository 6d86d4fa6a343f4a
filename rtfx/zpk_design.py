"""Classic IIR designs for many edge frequencies at once (vectorized over ramp steps).

A parameter ramp redesigns its filter every few samples; ``scipy.signal.iirfilter`` costs
about 1 ms per call (mostly its pole-zero pairing). Here the analog prototype (a lowpass at
1 rad/s) and the grouping of its roots into sections are fixed once; a set of edges then only
needs the frequency transform and the bilinear transform, elementwise formulas on one array of
roots (about 60 us for any number of designs up to a few hundred).

Because the grouping is fixed, a section keeps its identity through a whole sweep, so the
filter state can follow it. The transfer function equals scipy's design (the tests compare
them); every section gets unit gain in the pass band (``_scaled``).
"""
from __future__ import annotations

import numpy as np
import scipy.signal

PAIR_TOL = 1e-9


class IIRDesigner:
    """One family/band type/order; ``sections(...)`` designs it for arrays of edge frequencies.

    Args:
        family: butter, cheby1, cheby2, ellip, bessel (as ``scipy.signal.iirfilter``).
        btype: lowpass, highpass, bandpass, bandstop.
        order: prototype order (band types get twice as many poles).
        ripple_db, attenuation_db: pass-band ripple and stop-band attenuation in dB.

    Roots are kept in flat arrays ``(S, R)``. A prototype root with positive imaginary part
    stands for its conjugate pair; a real one for itself. Low/high-pass transforms map each
    root to one root; band transforms map root ``r`` to ``h +- sqrt(h^2 - w0^2)``, so a pair
    gives two pairs and a real root one pair (conjugate or two real roots: one section either
    way). The last column of each array is a dummy root 0 (a factor of 1) for unused slots.
    """

    def __init__(self, family: str, btype: str, order: int, ripple_db: float = 1.0, attenuation_db: float = 60.0):
        self.btype = btype
        zeros, poles, gain = scipy.signal.iirfilter(
            order, 1.0, rp=ripple_db, rs=attenuation_db, btype="lowpass", analog=True, ftype=family, output="zpk"
        )
        zeros, poles = np.asarray(zeros, complex), np.asarray(poles, complex)
        self._excess = len(poles) - len(zeros)  # zeros at infinity of the prototype
        self._zeros, self._zero_upper, self._zero_groups = self._layout(zeros)
        self._poles, self._pole_upper, self._pole_groups = self._layout(poles)
        inverse = btype in ("highpass", "bandstop")  # their transforms bring a prototype-only factor
        self._gain = float(gain) * (float(np.real(np.prod(-zeros) / np.prod(-poles))) if inverse else 1.0)
        self._zero_groups += self._extra_zero_groups()
        reference = self._roots(np.array([0.05]), np.array([0.1]))
        self._index = self._pair(reference[0][0], reference[1][0])

    # -- structure (fixed at construction) -----------------------------------------------
    def _layout(self, roots: np.ndarray) -> tuple[np.ndarray, int, list[tuple[int, ...]]]:
        """Prototype roots to transform (upper ones, then real ones), how many are upper, and
        the groups of the flat layout."""
        real = np.abs(roots.imag) <= PAIR_TOL * np.maximum(1.0, np.abs(roots))
        upper, reals = roots[~real & (roots.imag > 0)], roots[real].real.astype(complex)
        u, r = len(upper), len(reals)
        if self.btype in ("lowpass", "highpass"):  # flat: [upper, conj(upper), real]
            groups = [(i, u + i) for i in range(u)] + [(2 * u + i,) for i in range(r)]
        else:  # flat: [plus_u, conj(plus_u), minus_u, conj(minus_u), plus_r, minus_r]
            groups = [(i, u + i) for i in range(u)] + [(2 * u + i, 3 * u + i) for i in range(u)]
            groups += [(4 * u + i, 4 * u + r + i) for i in range(r)]
        return np.concatenate([upper, reals]), u, groups

    def _extra_zero_groups(self) -> list[tuple[int, ...]]:
        """Groups of the zeros the transforms add, after the transformed prototype zeros."""
        m = self._excess
        first = max((i for g in self._zero_groups for i in g), default=-1) + 1
        if self.btype in ("bandpass", "bandstop"):  # (+1, -1) or (e^jt, e^-jt) per section
            return [(first + i, first + m + i) for i in range(m)]
        return [tuple(range(first + i, min(first + i + 2, first + m))) for i in range(0, m, 2)]

    def _pair(self, zeros: np.ndarray, poles: np.ndarray) -> np.ndarray:
        """Index array ``(N, 4)``: zero slots and pole slots of each section (-1: unused).

        Like ``scipy.signal.zpk2sos``, chosen once at reference edges: the pole group nearest
        the unit circle takes the nearest zeros first; sections run from the poles farthest
        from the circle to the nearest.
        """
        radius = [max(abs(poles[i]) for i in g) for g in self._pole_groups]
        pairs = [g for g in self._zero_groups if len(g) == 2]
        singles = [g for g in self._zero_groups if len(g) == 1]
        rows = []
        for index in np.argsort(radius)[::-1]:
            group = self._pole_groups[index]
            distance = lambda g: abs(zeros[g[0]] - poles[group[0]])
            if len(group) == 2 and pairs:
                chosen = min(pairs, key=distance)
                pairs.remove(chosen)
            elif len(group) == 2 and len(singles) >= 2:
                singles.sort(key=distance)
                chosen = singles.pop(0) + singles.pop(0)
            elif singles:
                chosen = min(singles, key=distance)
                singles.remove(chosen)
            else:
                chosen = ()
            pad = lambda g: list(g) + [-1] * (2 - len(g))
            rows.append(pad(chosen) + pad(group))
        return np.array(rows[::-1])

    # -- designs -------------------------------------------------------------------------
    def _roots(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Digital zeros ``(S, Z + 1)``, poles ``(S, P + 1)`` and gains ``(S,)`` for edges given
        as fractions of the sample rate (last columns: the dummy root 0)."""
        rows, m = low.size, self._excess
        warp_low = 2 * np.tan(np.pi * low)[:, None]  # pre-warped analog edges (bilinear, fs = 1)
        gain = np.full(rows, self._gain)
        if self.btype in ("lowpass", "highpass"):
            lowpass = self.btype == "lowpass"
            scale = (lambda r: r * warp_low) if lowpass else (lambda r: warp_low / r)
            zeros = _mirror(scale(self._zeros), self._zero_upper)
            poles = _mirror(scale(self._poles), self._pole_upper)
            extra = np.zeros((rows, 0 if lowpass else m))  # high-pass: m zeros at s = 0
            gain = gain * warp_low[:, 0] ** m if lowpass else gain
        else:
            warp_high = 2 * np.tan(np.pi * high)[:, None]
            width, centre2 = warp_high - warp_low, warp_low * warp_high
            bandpass = self.btype == "bandpass"
            half = (lambda r: r * width / 2) if bandpass else (lambda r: width / 2 / r)
            zeros = _split(half(self._zeros), centre2, self._zero_upper)
            poles = _split(half(self._poles), centre2, self._pole_upper)
            if bandpass:  # m zeros at s = 0 (the m at infinity come below)
                extra = np.zeros((rows, m))
                gain = gain * width[:, 0] ** m
            else:
                root = 1j * np.sqrt(centre2)
                extra = np.concatenate([np.repeat(root, m, 1), np.repeat(-root, m, 1)], axis=1)
        zeros = np.concatenate([zeros, extra], axis=1)
        gain = gain * np.real(np.prod(2 - zeros, axis=1) / np.prod(2 - poles, axis=1))
        infinite = poles.shape[1] - zeros.shape[1]  # zeros at infinity map to z = -1
        digital_zeros = np.concatenate([(2 + zeros) / (2 - zeros), -np.ones((rows, infinite)), np.zeros((rows, 1))], axis=1)
        digital_poles = np.concatenate([(2 + poles) / (2 - poles), np.zeros((rows, 1))], axis=1)
        return digital_zeros, digital_poles, gain

    def sections(self, samplerate: float, low_hz, high_hz=None) -> np.ndarray:
        """Sections ``(S, N, 6)`` for ``S`` edge values (arrays or scalars, in Hz)."""
        low = np.atleast_1d(np.asarray(low_hz, dtype=np.float64)) / samplerate
        high = low if high_hz is None else np.broadcast_to(np.asarray(high_hz, dtype=np.float64) / samplerate, low.shape)
        zeros, poles, gain = self._roots(low, high)
        sos = np.empty((low.size, len(self._index), 6))
        for offset, roots, first in ((0, zeros, 0), (3, poles, 2)):
            r1, r2 = roots[:, self._index[:, first]], roots[:, self._index[:, first + 1]]
            sos[..., offset] = 1.0
            sos[..., offset + 1] = -(r1 + r2).real
            sos[..., offset + 2] = (r1 * r2).real
        return self._scaled(sos, gain, low, high)

    def _scaled(self, sos: np.ndarray, gain: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Give every section unit gain in the pass band (at DC, Nyquist or the band centre)
        and the first one the design's gain there.

        With all the gain in one section (as ``zpk2sos`` does) a low-frequency cascade passes
        1e-12-scale signals between sections that later ones amplify by 1e12: harmless for a
        fixed filter, but any change of coefficients then shows up amplified.
        """
        if self.btype in ("lowpass", "bandstop"):
            point = np.ones(low.shape, complex)
        elif self.btype == "highpass":
            point = -np.ones(low.shape, complex)
        else:  # the analog centre frequency, mapped back through the bilinear transform
            point = np.exp(2j * np.arctan(np.sqrt(np.tan(np.pi * low) * np.tan(np.pi * high))))
        powers = point[:, None, None] ** -np.arange(3)  # (S, 1, 3): 1, z^-1, z^-2
        response = np.abs(np.sum(sos[..., :3] * powers, -1) / np.sum(sos[..., 3:] * powers, -1))
        sos[..., :3] /= response[..., None]
        sos[:, 0, :3] *= (gain * np.prod(response, axis=-1))[:, None]
        return sos


def _mirror(roots: np.ndarray, upper: int) -> np.ndarray:
    """``[upper, conj(upper), real]`` from transformed ``[upper, real]`` roots ``(S, R)``."""
    return np.concatenate([roots[:, :upper], np.conj(roots[:, :upper]), roots[:, upper:]], axis=1)


def _split(half: np.ndarray, centre2: np.ndarray, upper: int) -> np.ndarray:
    """Band-transform images ``h +- sqrt(h^2 - w0^2)`` of ``[upper, real]`` in the flat layout."""
    root = np.sqrt(half**2 - centre2 + 0j)
    plus, minus = half + root, half - root
    u = slice(0, upper)
    return np.concatenate([plus[:, u], np.conj(plus[:, u]), minus[:, u], np.conj(minus[:, u]), plus[:, upper:], minus[:, upper:]], axis=1)
