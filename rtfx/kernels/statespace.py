"""Block state-space operators of SOS cascades and the scans that chain them.

``block_matrix`` maps a block's start state and inputs to its end state and outputs (see
``iir.py``); ``starts_matrix`` gives every chunk's start state of a block in one matmul;
``time_varying_scan`` chains per-step operators by a log-step scan; ``tree_fans`` lays out
the tree of ``starts_matrix`` matmuls that long blocks use (``SosFilter._chunks_tree``).
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import torch


#: The tree over a long block's chunks: chunks per group at its first level, and units per
#: group above it (the first level's matmul touches every chunk: it stays small).
GROUP = 16
FAN = 64
#: ... fewer for long cascades: a level's matrix keeps at most this many rows, ``(fan + 1) 2N``
#: (a 12-section cascade at fan 64 took ~170 ms to rebuild on the CPU after a coefficient change).
TREE_ROWS = 520


def tree_fans(chunks: int, states: int) -> list[int]:
    """Fan-out of each level of the tree over ``chunks`` chunks of ``states`` (2N) states:
    ``GROUP``, then the upper fan-out (``FAN``, or less for long cascades, see ``TREE_ROWS``)
    until one group holds the top level."""
    upper = 1 << max(0, (TREE_ROWS // states - 1).bit_length() - 1)  # largest power of two that fits
    upper = min(FAN, max(GROUP, upper))
    fans, units = [GROUP], -(-chunks // GROUP)
    while units > upper:
        fans.append(upper)
        units = -(-units // upper)
    return fans + [upper]


def block_matrix(sos: np.ndarray, frames: int) -> np.ndarray:
    """The float64 operator ``M`` with ``[s', y] = [s, x] @ M`` for ``frames`` samples.

    Args:
        sos: sections, shape ``(N, 6)``, as ``scipy.signal`` writes them.
        frames: block length ``k``.
    Returns:
        array of shape ``(2N + k, 2N + k)``.
    """
    n_states = 2 * sos.shape[0]
    probes = n_states + frames
    x = np.zeros((probes, frames))
    x[np.arange(n_states, probes), np.arange(frames)] = 1.0
    zi = np.zeros((sos.shape[0], probes, 2))
    state = np.arange(n_states)
    zi[state // 2, state, state % 2] = 1.0
    y, zf = scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)
    end_state = zf.transpose(1, 0, 2).reshape(probes, n_states)
    return np.hstack([end_state, y])


def starts_matrix(a: np.ndarray, m: int) -> np.ndarray:
    """``G`` with ``[s_0, ..., s_m] = [s_0, U_0, ..., U_{m-1}] @ G`` for ``s_(j+1) = s_j A + U_j``.

    ``s_j = s_0 A^j + sum_(i<j) U_i A^(j-1-i)``: a block upper-triangular Toeplitz matrix of
    powers of ``a`` ``(n, n)``, shape ``((m+1) n, (m+1) n)``, float64. Its leading ``m'+1``
    blocks serve any ``m' < m``.
    """
    n = a.shape[0]
    powers = [np.eye(n)]
    for _ in range(m):
        powers.append(powers[-1] @ a)
    rows, cols = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
    exponent = np.where(rows == 0, cols, cols - rows)  # row 0: s_0; row i: U_{i-1}
    blocks = np.where((exponent >= 0)[..., None, None], np.stack(powers)[np.clip(exponent, 0, m)], 0.0)
    blocks[0, 0], blocks[1:, 0] = np.eye(n), 0.0
    return blocks.transpose(0, 2, 1, 3).reshape((m + 1) * n, -1)


def time_varying_scan(start: torch.Tensor, transitions: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """All states of ``s_{j+1} = s_j @ A_j + U_j`` for j < S, by a log-step scan.

    Args:
        start: ``s_0`` ``(channels, n)``; transitions: ``A_j`` ``(S, n, n)``; inputs: ``U_j``
            ``(S, channels, n)``.
    Returns:
        ``(S, channels, n)``: ``s_1 .. s_S``. Each round composes every step with the one
        ``d`` before it (``(A, U) o (A', U') = (A A', U A' + U')``), ``log2 S`` rounds in all.
    """
    maps, offsets = transitions.clone(), inputs.clone()
    offsets[0] += start @ transitions[0]
    reach = 1
    while reach < maps.shape[0]:
        offsets[reach:] = torch.baddbmm(offsets[reach:], offsets[:-reach], maps[reach:])
        maps[reach:] = torch.bmm(maps[:-reach], maps[reach:])
        reach *= 2
    return offsets
