"""A well-conditioned state basis for an SOS cascade (each section balanced).

The DF2T state of a low-frequency section holds large, nearly cancelling values; stored in
float32 it costs 1e-5..1e-4 relative error (a 100 Hz lowpass: 2.6e-4). In a *balanced* basis
every state is equally controllable and observable, and the same float32 arithmetic gives
~1e-7. Any invertible ``T`` is exact in float64 (``z = s @ T``), so the basis is a pure
numerical choice: the state is converted to DF2T whenever it is read (``zi``).

Each section is balanced on its own (a block-diagonal ``T`` of 2x2 blocks): balancing a
whole high-order cascade at once breaks down (a 14th-order lowpass at 0.01 Nyquist has
Gramians spanning 1e-46..1e47), while a single section's Gramians are always well scaled.
Gramians come from the doubling sum ``P = sum_k A^k B B^T A^kT`` (positive semi-definite, no
Lyapunov solve to break down), then the square-root balancing algorithm. A section whose
transform is ill-conditioned or wildly scaled (first-order, FIR or unity-gain sections) keeps its DF2T basis.
"""
from __future__ import annotations

import numpy as np

from .statespace import block_matrix

MAX_CONDITION = 1e8


def _gramian(a: np.ndarray, bb: np.ndarray) -> np.ndarray:
    """``sum_k a^k bb a^kT`` for a stable ``a``, by doubling."""
    total, power = bb.copy(), a.copy()
    for _ in range(64):
        step = power @ total @ power.T
        total = total + step
        if np.max(np.abs(step)) <= 1e-17 * np.max(np.abs(total)):
            break
        power = power @ power
    return total


def _root(gramian: np.ndarray) -> np.ndarray:
    """``L`` with ``L L^T = gramian`` (eigen-decomposition; tiny eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((gramian + gramian.T) / 2)
    values = np.maximum(values, 1e-14 * max(values.max(), 1e-300))
    return vectors * np.sqrt(values)


def _balance_section(one_sample: np.ndarray) -> np.ndarray:
    """Row-vector basis change ``T`` (2x2) balancing one section's one-sample operator."""
    a = one_sample[:2, :2].T  # column form: s' = a s + b x, y = c s + d x
    b = one_sample[2:, :2].T
    c = one_sample[:2, 2:].T
    lp = _root(_gramian(a, b @ b.T))
    lq = _root(_gramian(a.T, c.T @ c))
    u, sigma, _ = np.linalg.svd(lq.T @ lp)
    if not sigma.max() > 0:  # no state reaches the output (a plain gain): keep DF2T
        return np.eye(2)
    sigma = np.maximum(sigma, 1e-12 * sigma.max())
    transform = ((u / np.sqrt(sigma)).T @ lq.T).T  # z = s @ T: the balanced coordinates
    # A section that is (nearly) a plain gain, like a 0 dB peaking EQ, has Hankel singular
    # values near zero: its balanced basis is well conditioned but scaled by up to 1e78.
    scale = np.max(np.abs(transform)) if np.all(np.isfinite(transform)) else np.inf
    if scale > MAX_CONDITION or scale * MAX_CONDITION < 1 or np.linalg.cond(transform) > MAX_CONDITION:
        return np.eye(2)
    return transform


def balancing_transform(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block-diagonal row-vector basis change ``(T, T^-1)`` for the cascade ``sos``.

    Returns two ``(2N, 2N)`` float64 arrays; ``z = s @ T`` maps DF2T states to the basis.
    """
    states = 2 * sos.shape[0]
    transform = np.zeros((states, states))
    for index, section in enumerate(sos):
        transform[2 * index : 2 * index + 2, 2 * index : 2 * index + 2] = _balance_section(block_matrix(section[None], 1))
    return transform, np.linalg.inv(transform)
