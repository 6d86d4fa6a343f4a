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
    for index, (a1, a2) in enumerate(sos[:, 4:]):
        radius = float(np.max(np.abs(np.roots([1.0, a1, a2])))) if (a1 or a2) else 0.0
        if radius > MAX_POLE_RADIUS:
            raise ValueError(
                f"{what}: section {index} is unstable (pole radius {radius:.6g}; must be < 1)"
            )
    return sos
