"""SOS cascades whose coefficients move: many block operators at once, and a state basis
that keeps the state meaningful while they move.

During a parameter ramp a filter gets new coefficients every few samples. Keeping the DF2T
state values across such changes (what a per-sample direct-form filter does) can blow up: a
4th-order Butterworth low-pass swept from 1 kHz to 5 Hz in 30 ms peaks at 380x its input,
8th order at 20 Hz at 720x. We keep the state in each section's *input-normal* coordinates
instead: ``w = L^-1 s`` with ``L L^T = P``, the section's controllability Gramian. In these
coordinates ``[A B]`` has norm 1 for every stable section, so no sequence of coefficient sets
can make the state grow faster than the input feeds it, and a small coefficient change moves
the state only a little (``L`` is smooth in the coefficients). ``P`` carries a tiny ``delta I``
term so that a section that is (nearly) a plain gain, e.g. a 0 dB peaking EQ, still has a
well-defined basis through which a sweep can pass.

All arrays are float64 and batched over a leading axis of S coefficient sets.
"""
from __future__ import annotations

import numpy as np

#: Regularisation of the Gramian (see module docstring); negligible against any real section.
GRAMIAN_DELTA = 1e-12


def one_sample(sos: np.ndarray) -> np.ndarray:
    """The one-sample operators ``[s', y] = [s, x] @ M1`` of cascades ``sos`` ``(S, N, 6)``.

    Returns ``(S, 2N + 1, 2N + 1)``: the same DF2T arithmetic as ``scipy.signal.sosfilt``,
    probed with unit states and a unit input.
    """
    count, sections = sos.shape[:2]
    n = 2 * sections
    states = np.zeros((count, n + 1, n))  # probe p: unit state p (p < n) or unit input (p = n)
    states[:, np.arange(n), np.arange(n)] = 1.0
    signal = np.zeros((count, n + 1))
    signal[:, n] = 1.0
    out_states = np.empty_like(states)
    for i in range(sections):
        b0, b1, b2, _, a1, a2 = (sos[:, i, j, None] for j in range(6))
        s1, s2 = states[..., 2 * i], states[..., 2 * i + 1]
        y = b0 * signal + s1
        out_states[..., 2 * i] = b1 * signal - a1 * y + s2
        out_states[..., 2 * i + 1] = b2 * signal - a2 * y
        signal = y
    return np.concatenate([out_states, signal[..., None]], axis=-1)


def block_matrices(sos: np.ndarray, frames: int) -> np.ndarray:
    """Block operators ``[s', y] = [s, x] @ M`` over ``frames`` samples: ``(S, 2N+k, 2N+k)``."""
    step = one_sample(sos)
    n = step.shape[-1] - 1
    f, h, g, d = step[:, :n, :n], step[:, :n, n], step[:, n, :n], step[:, n, n]
    powers = np.empty((sos.shape[0], frames + 1, n, n))
    powers[:, 0] = np.eye(n)
    for j in range(frames):
        powers[:, j + 1] = powers[:, j] @ f
    out = np.zeros((sos.shape[0], n + frames, n + frames))
    out[:, :n, :n] = powers[:, frames]
    out[:, :n, n:] = np.einsum("sjab,sb->saj", powers[:, :frames], h)  # F^j h: state -> y_j
    g_powers = np.einsum("sa,sjab->sjb", g, powers[:, :frames])  # g F^t
    out[:, n:, :n] = g_powers[:, ::-1]  # input i reaches the end state as g F^(k-1-i)
    markov = np.concatenate([d[:, None], np.einsum("sta,sa->st", g_powers[:, : frames - 1], h)], axis=1)
    lag = np.arange(frames)[None, :] - np.arange(frames)[:, None]  # j - i
    out[:, n:, n:] = np.where(lag >= 0, markov[:, np.clip(lag, 0, None)], 0.0)
    return out


def input_normal_basis(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Block-diagonal ``(T, T^-1)``, each ``(S, 2N, 2N)``, with ``w = s @ T`` input-normal."""
    b0, b1, b2, _, a1, a2 = np.moveaxis(sos, -1, 0)
    gramian = section_gramians(a1, a2, b1 - a1 * b0, b2 - a2 * b0)
    l11 = np.sqrt(gramian[0])
    l21 = gramian[1] / l11
    l22 = np.sqrt(np.maximum(gramian[2] - l21**2, GRAMIAN_DELTA))
    count, sections = sos.shape[:2]
    transform = np.zeros((count, 2 * sections, 2 * sections))
    inverse = np.zeros_like(transform)
    rows = 2 * np.arange(sections)
    inverse[:, rows, rows], inverse[:, rows, rows + 1], inverse[:, rows + 1, rows + 1] = l11, l21, l22
    transform[:, rows, rows], transform[:, rows + 1, rows + 1] = 1 / l11, 1 / l22
    transform[:, rows, rows + 1] = -l21 / (l11 * l22)
    return transform, inverse


def section_gramians(a1, a2, g1, g2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P11, P12, P22)`` of ``P = A P A^T + g g^T + delta I`` for the DF2T sections
    ``s' = A s + g x``, ``A = [[-a1, 1], [-a2, 0]]``, ``g = (g1, g2)`` (arrays of any shape).

    The 2x2 discrete Lyapunov equation in closed form: its three equations give ``P22`` and
    ``P12`` from ``P11``, and ``P11`` from the rest (the denominator is positive inside the
    stability triangle ``|a2| < 1, |a1| < 1 + a2``).
    """
    q11, q12, q22 = g1 * g1 + GRAMIAN_DELTA, g1 * g2, g2 * g2 + GRAMIAN_DELTA
    p11 = ((q11 + q22) * (1 + a2) - 2 * a1 * q12) / ((1 - a2) * ((1 + a2) ** 2 - a1**2))
    p12 = (a1 * a2 * p11 + q12) / (1 + a2)
    return p11, p12, a2**2 * p11 + q22


def in_basis(matrices: np.ndarray, transform: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """``diag(T^-1, I) M diag(T, I)`` for each of S operators: the same maps on ``[w, x]``."""
    n = transform.shape[-1]
    matrices[:, :n] = inverse @ matrices[:, :n]
    matrices[:, :, :n] = matrices[:, :, :n] @ transform
    return matrices


def compose_steps(operators: np.ndarray, start: np.ndarray) -> np.ndarray:
    """One block operator for coefficients that move every ``k`` frames.

    Args:
        operators: ``(S, n + k, n + k)``: step ``i`` maps ``[w, x_i] -> [w', y_i]`` in its
            own state coordinates (the state keeps its coordinates from step to step).
        start: ``(n, n)``: the block's stored state ``z`` to the first step's coordinates.
    Returns:
        ``(n + S k, n + S k)`` float64 ``M`` with ``[w_S, y] = [z, x] @ M`` for the whole block,
        the same map as running the steps one after another (``SosFilter.process_ramp``).
        Neighbouring steps are composed pairwise, all pairs at once, until one is left.
    """
    n, left_over = start.shape[0], []
    while len(operators) > 1:
        if len(operators) % 2:  # an odd last step waits; it joins at the end
            left_over.append(operators[-1:])
            operators = operators[:-1]
        operators = compose_pairs(operators[0::2], operators[1::2], n)
    for last in reversed(left_over):
        operators = compose_pairs(operators, last, n)
    out = operators[0].copy()
    out[:n] = start @ out[:n]
    return out


def compose_pairs(first: np.ndarray, second: np.ndarray, n: int) -> np.ndarray:
    """``first`` then ``second`` as one operator, for stacks of ``n``-state operators on
    ``[w, x] -> [w', y]`` over ``k1`` and ``k2`` frames: ``(P, n + k1 + k2, ...)``.

    With ``M = [[A, C], [B, D]]`` (state and input rows; state and output columns), the pair
    maps ``[w, x1, x2]`` to ``[w'', y1, y2]`` by ``[[A1 A2, C1, A1 C2], [B1 A2, D1, B1 C2],
    [B2, 0, D2]]``.
    """
    k1, k2 = first.shape[1] - n, second.shape[1] - n
    out = np.zeros((first.shape[0], n + k1 + k2, n + k1 + k2))
    through = first[:, :, :n] @ second[:, :n]  # [A1; B1] @ [A2, C2]
    out[:, : n + k1, :n] = through[:, :, :n]
    out[:, : n + k1, n + k1 :] = through[:, :, n:]
    out[:, : n + k1, n : n + k1] = first[:, :, n:]
    out[:, n + k1 :, :n] = second[:, n:, :n]
    out[:, n + k1 :, n + k1 :] = second[:, n:, n:]
    return out
