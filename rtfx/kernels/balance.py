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

from .ramp import one_sample

MAX_CONDITION = 1e8


def _gramian(a: np.ndarray, bb: np.ndarray) -> np.ndarray:
    """``sum_k a^k bb a^kT`` for stable ``a``, by doubling; stacks ``(N, 2, 2)`` at once."""
    total, power = bb.copy(), a.copy()
    for _ in range(16):  # 4 doublings a round, convergence checked after each round
        for _ in range(4):
            step = power @ total @ power.swapaxes(-1, -2)
            total = total + step
            power = power @ power
        if np.all(np.abs(step).max(axis=(-1, -2)) <= 1e-17 * np.abs(total).max(axis=(-1, -2))):
            break
    return total


def _root(gramian: np.ndarray) -> np.ndarray:
    """``L`` with ``L L^T = gramian`` per matrix of the stack (eigen-decomposition; tiny
    eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((gramian + gramian.swapaxes(-1, -2)) / 2)
    values = np.maximum(values, 1e-14 * np.maximum(values.max(axis=-1, keepdims=True), 1e-300))
    return vectors * np.sqrt(values)[..., None, :]


def _balance_sections(one_sample: np.ndarray) -> np.ndarray:
    """Row-vector basis changes ``T`` ``(N, 2, 2)`` balancing each section's one-sample
    operator ``(N, 3, 3)``."""
    a = one_sample[:, :2, :2].swapaxes(-1, -2)  # column form: s' = a s + b x, y = c s + d x
    b = one_sample[:, 2:, :2].swapaxes(-1, -2)
    c = one_sample[:, :2, 2:].swapaxes(-1, -2)
    lp = _root(_gramian(a, b @ b.swapaxes(-1, -2)))
    lq = _root(_gramian(a.swapaxes(-1, -2), c.swapaxes(-1, -2) @ c))
    u, sigma, _ = np.linalg.svd(lq.swapaxes(-1, -2) @ lp)
    reaches = sigma.max(axis=-1) > 0  # else no state reaches the output (a plain gain)
    sigma = np.maximum(sigma, 1e-12 * np.where(reaches, sigma.max(axis=-1), 1.0)[:, None])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        transform = (lq @ (u / np.sqrt(sigma)[:, None, :]))  # z = s @ T: the balanced coordinates
    # A section that is (nearly) a plain gain, like a 0 dB peaking EQ, has Hankel singular
    # values near zero: its balanced basis is well conditioned but scaled by up to 1e78.
    # Those, and any ill-conditioned one, keep DF2T.
    finite = np.all(np.isfinite(transform), axis=(-1, -2))
    scale = np.where(finite, np.max(np.abs(np.where(finite[:, None, None], transform, 0.0)), axis=(-1, -2)), np.inf)
    usable = reaches & finite & (scale <= MAX_CONDITION) & (scale * MAX_CONDITION >= 1)
    usable[usable] &= np.linalg.cond(transform[usable]) <= MAX_CONDITION
    return np.where(usable[:, None, None], transform, np.eye(2))


def balancing_transform(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block-diagonal row-vector basis change ``(T, T^-1)`` for the cascade ``sos``.

    Returns two ``(2N, 2N)`` float64 arrays; ``z = s @ T`` maps DF2T states to the basis.
    """
    blocks = _balance_sections(one_sample(sos[:, None, :]))
    inverses = np.linalg.inv(blocks)
    states = 2 * sos.shape[0]
    transform, inverse = np.zeros((states, states)), np.zeros((states, states))
    for index in range(sos.shape[0]):
        transform[2 * index : 2 * index + 2, 2 * index : 2 * index + 2] = blocks[index]
        inverse[2 * index : 2 * index + 2, 2 * index : 2 * index + 2] = inverses[index]
    return transform, inverse
