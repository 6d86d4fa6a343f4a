"""Validation of second-order sections (the ``sos`` arrays ``scipy.signal`` writes)."""
from __future__ import annotations

import numpy as np

#: Largest pole radius accepted; a pole on or outside the unit circle never decays.
MAX_POLE_RADIUS = 1.0 - 1e-9


def check_sos(sos, what: str = "sos") -> np.ndarray:
    """Return ``sos`` as a float64 ``(N, 6)`` array with ``a0 = 1``, or raise ``ValueError``.

    Each row is ``[b0, b1, b2, a0, a1, a2]``. Rows with ``a0 != 1`` are normalised. A section
    whose poles lie on or outside the unit circle is rejected with its index and pole radius.
    """
    try:
        sos = np.array(sos, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of sections [b0, b1, b2, a0, a1, a2]") from None
    if sos.ndim == 1 and sos.shape[0] == 6:
        sos = sos[None, :]
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] == 0:
        raise ValueError(f"{what} must have shape (sections, 6), got {sos.shape}")
    if not np.all(np.isfinite(sos)):
        raise ValueError(f"{what} holds NaN or Inf")
    a0 = sos[:, 3]
    if np.any(a0 == 0):
        raise ValueError(f"{what}: section {int(np.argmin(np.abs(a0)))} has a0 = 0")
    sos = sos / a0[:, None]
    radii = pole_radii(sos[:, 4], sos[:, 5])
    unstable = np.flatnonzero(radii > MAX_POLE_RADIUS)
    if unstable.size:
        index = unstable[0]
        raise ValueError(f"{what}: section {index} is unstable (pole radius {radii[index]:.6g}; must be < 1)")
    return sos


def pole_radii(a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """The larger pole radius of each section ``z^2 + a1 z + a2``, in closed form: a real pair
    reaches ``(|a1| + sqrt(a1^2 - 4 a2)) / 2``, a complex pair ``sqrt(a2)`` (``|z|^2 = a2``)."""
    disc = a1 * a1 - 4.0 * a2
    return np.where(disc >= 0, (np.abs(a1) + np.sqrt(np.abs(disc))) / 2, np.sqrt(np.abs(a2)))
