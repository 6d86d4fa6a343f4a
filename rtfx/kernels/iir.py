"""Streaming IIR filtering of second-order-section cascades by block state-space matmuls.

A linear filter with state ``s`` maps a block of ``k`` inputs and its start state to the
block's outputs and its end state by one fixed matrix ``M_k`` of shape ``(2N+k, 2N+k)``
(N sections, 2 DF2T states each, laid out as scipy's ``zi[section, :, 0:2]``)::

    [s', y] = [s, x] @ M_k        s, s': (2N,)   x, y: (k,)

Row ``j < 2N`` of ``M_k`` is the response (end state, outputs) to unit state ``j`` and zero
input; row ``2N + i`` the response to a unit impulse at ``x[i]`` and zero state, built in
float64 by ``scipy.signal.sosfilt`` on exactly those probes and cast to float32 (the same
arithmetic as ``sosfilt``; far better conditioned than a canonical state-space form).

Long blocks are cut into chunks of ``K`` frames. For ``m`` chunks (rows ``X_j``):

    [U_j, Z_j] = X_j @ M_K[2N:]            zero-state end states and outputs, one batched matmul
    s_{j+1}    = s_j @ A + U_j             A = M_K[:2N, :2N]: the chunk-start states
    Y_j        = Z_j + s_j @ C             C = M_K[:2N, 2N:]

so the cost per sample is O(K + 2N) instead of O(L). For a streaming block (up to 64 chunks)
all chunk-start states come from one matmul with a precomputed block-Toeplitz matrix of
powers of ``A``; longer (offline) blocks apply the same matmul in a tree: chunks form groups,
groups form larger groups, and each level's start states come from the level above (see
``_chunks_tree``): parallel over time on a GPU in a few kernels per level. A remainder shorter
than ``K`` is split into powers of two, each with its own small matrix.

States are kept in a balanced basis ``z = s @ T`` (``balance.py``: float32 accurate at low frequencies); ``zi`` is DF2T.
"""
from __future__ import annotations

import numpy as np
import torch

from . import fused, fused_sos
from .balance import balancing_transform
from .ramp import block_matrices, compose_steps, in_basis, input_normal_basis, one_sample
from .statespace import block_matrix, starts_matrix, time_varying_scan, tree_fans
from .sos import check_sos

#: Longest block (in chunks) whose chunk-start states come from one precomputed matmul.
MAX_DIRECT_CHUNKS = 64


def default_chunk(max_block: int) -> int:
    """Chunk length K (a power of two).

    Measured on a 2-core CPU (torch 2.13, 1 thread, 4 sections): one matmul per block wins up
    to 256 frames (12 us for 2 ch, 86 us for 64 ch; each extra torch op costs ~5 us, so the
    chunked form pays ~50 us of fixed overhead); beyond that chunks of 128 balance the batched
    zero-state matmul against the chunk-start states. Blocks too long for the direct form
    (offline) take 64: on an H200, 60 s x 64 ch in 2.4 ms (128: 2.6, 32: 2.9); on the CPU
    32 would be ~1.3x faster.
    """
    whole = 1 << (max(max_block, 1) - 1).bit_length()
    if whole <= 256:
        return whole
    return 128 if max_block <= 128 * MAX_DIRECT_CHUNKS else 64


class SosFilter:
    """A streaming SOS cascade on ``(channels, frames)`` float32 blocks, CPU or CUDA.

    Args:
        sos: ``(N, 6)`` sections (float64 recommended); validated for stability.
        channels: number of channels, each with its own state.
        max_block: the longest block ``process`` will get (sets the scan depth).
        device: torch device.
        chunk: chunk length K (a power of two); default from ``default_chunk``.

    ``set_sos`` swaps coefficients and keeps the state (no click). Not thread-safe: call it
    from the thread that calls ``process``.
    """

    def __init__(self, sos, channels: int, max_block: int, device="cpu", chunk: int | None = None):
        sos = check_sos(sos)
        self.sections = sos.shape[0]
        self.channels, self.max_block = channels, max_block
        self.device = torch.device(device)
        self.fused = fused.available(self.device)  # pieces run as one Triton kernel (fused_sos)
        self.chunk = chunk or default_chunk(max_block)
        if self.chunk & (self.chunk - 1):
            raise ValueError(f"chunk must be a power of two, got {self.chunk}")
        states = 2 * self.sections
        sizes = [1 << i for i in range(self.chunk.bit_length())]
        f32 = dict(device=self.device, dtype=torch.float32)
        self._matrices = {k: torch.empty(states + k, states + k, **f32) for k in sizes}
        self._stale: set[int | str] = set()  # block sizes, "powers", "starts", "groups" to rebuild
        # Per piece size: input rows [state | block] and output rows [state' | y] (the fused
        # piece's too, with its ticket); the state lives in the chunk size's input buffer.
        self._buffers = {k: [torch.zeros(channels, states + k, **f32) for _ in range(2)] for k in sizes}
        self._state = self._buffers[self.chunk][0][:, :states]
        self._ticket = torch.zeros(1, dtype=torch.int32, device=self.device)
        max_chunks = max(1, -(-max_block // self.chunk))
        # The tree's levels (long blocks): (within, sum) matrices per level, see _refresh_tree.
        self._fans = tree_fans(max_chunks, states) if max_chunks > MAX_DIRECT_CHUNKS else []
        self._tree = [(torch.empty((m + 1) * states, m * states, **f32), torch.empty(m * states, states, **f32))
                      for m in self._fans]
        # Streaming blocks of up to MAX_DIRECT_CHUNKS chunks get all chunk-start states from
        # one matmul with a precomputed matrix; longer (offline) blocks use the tree.
        self._direct_chunks = max_chunks if max_chunks <= MAX_DIRECT_CHUNKS else 0
        if self._direct_chunks:
            width = states * (max_chunks + 1)
            self._starts_matrix = torch.empty(width, width, **f32)
            self._starts_in = torch.empty(channels, width, **f32)
        self._basis = self._basis_inv = None
        self._composed = False  # the chunk's matrix holds this block's ramp (composed steps or a step)
        self.sos = sos
        self.set_sos(sos)

    # -- coefficients --------------------------------------------------------------------
    def set_sos(self, sos, rebalance: bool = True) -> None:
        """Replace the coefficients (same number of sections); the state is kept.

        When the coefficients change, the state keeps its input-normal coordinates (see ``ramp.py``:
        no jump or sweep can blow the state up). ``rebalance=False`` (a ramp's step) leaves it in that
        basis, skipping the balancing; the first ``before_block`` with no step since the last one
        rebalances. Matrices are rebuilt lazily, when a block needs them. For coefficients that move
        within a block, ``process_ramp`` is faster.
        """
        sos = check_sos(sos)
        if sos.shape[0] != self.sections:
            raise ValueError(f"expected {self.sections} sections, got {sos.shape[0]}")
        normal, normal_inv = input_normal_basis(np.stack([self.sos, sos]))
        basis, inverse = balancing_transform(sos) if rebalance else (normal[1], normal_inv[1])
        if self._basis is not None:  # move the state into the new basis
            change = self._basis_inv
            if not np.array_equal(sos, self.sos):
                change = change @ normal[0] @ normal_inv[1]
            self._state.copy_(self._state @ torch.from_numpy(change @ basis).to(self._state))
        self.sos = sos
        self._basis, self._basis_inv = basis, inverse
        self._stale = set(self._matrices) | {"starts", "tree"}
        self._ramped = self._stepped = not rebalance

    def _in_basis(self, matrix: np.ndarray) -> np.ndarray:
        """``diag(T^-1, I) M diag(T, I)``: the operator on ``[z, x]`` for ``z = s @ T``."""
        states = 2 * self.sections
        matrix[:states] = self._basis_inv @ matrix[:states]
        matrix[:, :states] = matrix[:, :states] @ self._basis
        return matrix

    def _refresh(self, k: int) -> torch.Tensor:
        matrix = self._matrices[k]
        if k in self._stale:
            matrix.copy_(torch.from_numpy(self._in_basis(block_matrix(self.sos, k))))
            self._stale.discard(k)
        return matrix

    def _chunk_transition(self) -> np.ndarray:
        """``A``: the state after one chunk of zero input, float64 ``(2N, 2N)`` in the basis."""
        states = 2 * self.sections
        return self._in_basis(block_matrix(self.sos, self.chunk))[:states, :states]

    def _refresh_starts(self) -> torch.Tensor:
        """``starts_matrix(A, m)`` for the longest streaming block (see that function)."""
        if "starts" in self._stale:
            self._starts_matrix.copy_(torch.from_numpy(starts_matrix(self._chunk_transition(), self._direct_chunks)))
            self._stale.discard("starts")
        return self._starts_matrix

    def _refresh_tree(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per tree level with fan-out ``m`` and unit transition ``A_l`` (``A`` for chunks,
        ``A_(l+1) = A_l^m``): ``within``, ``starts_matrix(A_l, m)`` cut to its first ``m``
        state columns (a group's unit start states from its start and its units' ``U``), and
        ``sum`` ``(m 2N, 2N)``, the rows ``A_l^(m-1), ..., A_l, I`` that add a group's ``U``
        into the group's own."""
        if "tree" in self._stale:
            states, a = 2 * self.sections, self._chunk_transition()
            for m, (within, total) in zip(self._fans, self._tree):
                starts = starts_matrix(a, m)
                within.copy_(torch.from_numpy(starts[:, : m * states]))
                total.copy_(torch.from_numpy(starts[states:, m * states :]))
                a = np.linalg.matrix_power(a, m)
            self._stale.discard("tree")
        return self._tree

    # -- state ---------------------------------------------------------------------------
    @property
    def zi(self) -> np.ndarray:
        """The state as scipy's DF2T ``zi``: shape ``(N, channels, 2)``, float64."""
        state = self._state.detach().cpu().double().numpy() @ self._basis_inv
        return state.reshape(self.channels, self.sections, 2).transpose(1, 0, 2).copy()

    @zi.setter
    def zi(self, zi: np.ndarray) -> None:
        zi = np.asarray(zi, dtype=np.float64).reshape(self.sections, self.channels, 2)
        state = zi.transpose(1, 0, 2).reshape(self.channels, -1) @ self._basis
        self._state.copy_(torch.from_numpy(state))

    def df2t_state(self) -> torch.Tensor:
        """A copy of the state in DF2T layout, ``(channels, 2N)`` float32 on the device."""
        return self._state @ torch.from_numpy(self._basis_inv).to(self._state)

    def load_df2t_state(self, state: torch.Tensor) -> None:
        """Set the state from DF2T layout ``(channels, 2N)`` (as ``df2t_state`` returns)."""
        self._state.copy_(state @ torch.from_numpy(self._basis).to(self._state))

    def reset(self) -> None:
        """Zero the state."""
        self._state.zero_()

    # -- processing ----------------------------------------------------------------------
    def before_block(self, frames: int) -> None:
        """Host side of a block of ``frames``: rebalance after a ramp and rebuild the matrices
        it will use, so that ``process`` only launches kernels (a CUDA graph can replay it)."""
        if self._ramped and not self._stepped:  # no step for this block: the ramp has ended
            self.set_sos(self.sos)
        self._composed, self._stepped = self._stepped, False  # a step runs unbalanced this block
        if frames == self.chunk and frames not in self._stale:  # one piece, its matrix current
            return
        chunks, rest = divmod(frames, self.chunk)
        for bit in range(self.chunk.bit_length()):
            if rest & (1 << bit):
                self._refresh(1 << bit)
        if chunks:
            self._refresh(self.chunk)
        if chunks == 1 and not rest:  # one piece
            return
        if chunks and chunks <= self._direct_chunks:
            self._refresh_starts()
        elif chunks:
            self._refresh_tree()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Filter one block ``x`` of shape ``(channels, frames)``; returns ``(channels, frames)``.

        The result may be a view into an internal buffer, valid until the next call.
        """
        frames = x.shape[-1]
        if frames == 0:
            return x.clone()
        self._settle()
        whole = frames // self.chunk * self.chunk
        if whole == frames and frames == self.chunk:
            return self._piece(x, self.chunk)
        pieces = []
        if whole:
            pieces.append(self._chunks(x[:, :whole]))
        start = whole
        for bit in reversed(range(self.chunk.bit_length())):
            k = 1 << bit
            if (frames - whole) & k:
                pieces.append(self._piece(x[:, start : start + k], k))
                start += k
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def one_kernel(self, frames: int) -> bool:
        """Whether a block of ``frames`` is one fused kernel, so that ``process_one`` serves it."""
        return self.fused and frames == self.chunk

    def process_one(self, x: torch.Tensor, gain_in=None, gain_out=None, blend=None) -> torch.Tensor:
        """``process`` for a block of one fused kernel (``one_kernel``), with the gains and the
        blend of ``fused_sos.piece`` folded in."""
        self._settle()
        return self._piece(x, self.chunk, gain_in, gain_out, blend)

    def _settle(self) -> None:
        """After a ramp, back to the balanced basis (exact), unless the block's matrix is composed."""
        if self._ramped and not self._composed:
            self.set_sos(self.sos)

    def can_ramp_block(self, frames: int, step: int) -> bool:
        """Whether ``ramp_block`` serves a block of ``frames`` (one piece, whole steps)."""
        return frames == self.chunk and frames % step == 0

    def ramp_block(self, sos_steps: np.ndarray, step: int) -> None:
        """Host side of a block of ``chunk`` frames whose coefficients move every ``step``
        frames (``sos_steps`` ``(chunk / step, N, 6)``, trusted designs).

        The steps are composed into the block's one matrix (``compose_steps``; the state
        keeps its input-normal coordinates across each change, as in ``process_ramp``), so
        ``process`` runs the same single matmul as for still coefficients: smooth ramps inside
        a CUDA graph at no extra kernel. Afterwards the filter holds the last step's design.
        """
        frames = self.chunk
        normal, normal_inv = input_normal_basis(np.concatenate([self.sos[None], sos_steps]))
        samples = in_basis(one_sample(sos_steps), normal[1:], normal_inv[1:])  # one per step
        start = self._basis_inv @ normal[0]  # stored state -> the first step's coordinates
        self._matrices[frames].copy_(torch.from_numpy(compose_steps(np.repeat(samples, step, axis=0), start)))
        self.sos = np.array(sos_steps[-1])
        self._basis, self._basis_inv = normal[-1], normal_inv[-1]
        self._stale = (set(self._matrices) - {frames}) | {"starts", "tree"}
        self._ramped = self._composed = True

    def process_ramp(self, x: torch.Tensor, sos_steps: np.ndarray, step: int) -> torch.Tensor:
        """Filter one block while the coefficients move; returns ``(channels, frames)``.

        ``sos_steps`` ``(S, N, 6)``: set ``i`` applies to frames ``[i * step, (i + 1) * step)`` (S =
        ceil(frames / step)); the designs are trusted (no stability check). The state keeps its
        input-normal coordinates across each change; afterwards the filter holds the last set. A block of
        one chunk gets its steps composed into one matrix (``ramp_block``, about half the host work);
        otherwise the steps' zero-state responses are one batched matmul and only the state hand-over
        runs step by step. May return a view into an internal buffer, valid until the next call.
        """
        frames, n, channels = x.shape[-1], 2 * self.sections, self.channels
        if self.can_ramp_block(frames, step):
            self.ramp_block(sos_steps, step)
            y = self._piece(x, frames)
            self._composed = False  # the next block rebuilds the chunk's matrix (and rebalances)
            return y
        full, rest = divmod(frames, step)
        normal, normal_inv = input_normal_basis(np.concatenate([self.sos[None], sos_steps]))
        f32 = dict(device=self.device, dtype=torch.float32)
        state = self._state @ torch.from_numpy(self._basis_inv @ normal[0]).to(**f32)
        pieces = []
        if full:
            matrices = in_basis(block_matrices(sos_steps[:full], step), normal[1 : full + 1], normal_inv[1 : full + 1])
            matrices = torch.from_numpy(matrices).to(**f32)
            blocks = x[:, : full * step].reshape(channels, full, step).transpose(0, 1)
            drive = torch.bmm(blocks, matrices[:, n:])  # (S, channels, n + step): zero-state
            ends = time_varying_scan(state, matrices[:, :n, :n], drive[:, :, :n])
            starts = torch.cat([state[None], ends[:-1]])
            out = torch.baddbmm(drive[:, :, n:], starts, matrices[:, :n, n:])
            pieces.append(out.transpose(0, 1).reshape(channels, full * step))
            state = ends[-1]
        if rest:
            matrix = in_basis(block_matrices(sos_steps[full:], rest), normal[-1:], normal_inv[-1:])[0]
            joined = torch.cat([state, x[:, full * step :]], dim=1) @ torch.from_numpy(matrix).to(**f32)
            pieces.append(joined[:, n:])
            state = joined[:, :n]
        self._state.copy_(state)
        self.sos = np.array(sos_steps[-1])
        self._basis, self._basis_inv = normal[-1], normal_inv[-1]
        self._stale = set(self._matrices) | {"starts", "tree"}
        self._ramped = True
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)

    def _piece(self, x: torch.Tensor, k: int, *around) -> torch.Tensor:
        """One matmul: ``[s', y] = [s, x] @ M_k`` (state in place; fused: ``around`` as ``process_one``)."""
        states = 2 * self.sections
        inp, out = self._buffers[k]
        if self.fused:  # one kernel on CUDA with Triton
            return fused_sos.piece(x, self._state, self._refresh(k), out, self._ticket, *around)
        if k != self.chunk:  # the chunk's input buffer holds the state itself
            inp[:, :states].copy_(self._state)
        inp[:, states:].copy_(x)
        torch.matmul(inp, self._refresh(k), out=out)
        self._state.copy_(out[:, :states])
        return out[:, states:]

    def _chunks(self, x: torch.Tensor) -> torch.Tensor:
        """Whole chunks of K: batched zero-state matmul, chunk-start states, state response."""
        chunks = x.shape[-1] // self.chunk
        if chunks <= self._direct_chunks:
            return self._chunks_direct(x, chunks)
        return self._chunks_tree(x)

    def _chunks_direct(self, x: torch.Tensor, chunks: int) -> torch.Tensor:
        """All chunk-start states from one matmul with the precomputed ``G`` (six torch ops)."""
        states, k, ch = 2 * self.sections, self.chunk, self.channels
        matrix, starts_matrix = self._refresh(k), self._refresh_starts()
        width = states * (chunks + 1)
        drive = torch.mm(x.reshape(ch * chunks, k), matrix[states:]).view(ch, chunks, states + k)
        starts_in = self._starts_in[:, :width]
        starts_in[:, :states].copy_(self._state)
        starts_in[:, states:].view(ch, chunks, states).copy_(drive[..., :states])
        starts = torch.mm(starts_in, starts_matrix[:width, :width])  # [s_0, ..., s_m]
        chunk_starts = starts[:, : states * chunks].view(ch, chunks, states)
        out = torch.baddbmm(drive[..., states:], chunk_starts, matrix[:states, states:].expand(ch, states, k))
        self._state.copy_(starts[:, states * chunks :])
        return out.view(ch, -1)

    def _chunks_tree(self, x: torch.Tensor) -> torch.Tensor:
        """Any number of chunks, parallel over time, in a tree of groups.

        Level 0 groups 16 chunks, each level above groups up to 64 units of the one below
        (``tree_fans``). Going up, one matmul per level sums each group's units'
        ``U`` into the group's own; the top level (one group) gets its start states in one
        matmul, as in ``_chunks_direct``; going down, one matmul per level gives every unit's
        start state from its group's. Four passes over the signal-sized data (read X twice, write Y,
        update Y in place); the tree works on end states, ``2N`` numbers per chunk.
        """
        states, k, ch = 2 * self.sections, self.chunk, self.channels
        matrix, tree = self._refresh(k), self._refresh_tree()
        chunks = x.shape[-1] // k
        blocks = x.reshape(ch * chunks, k)
        ends = (blocks @ matrix[states:, :states]).view(ch, chunks, states)  # U_j
        starts = self._unit_starts(self._state, ends, tree)
        out = blocks @ matrix[states:, states:]
        out.addmm_(starts.reshape(ch * chunks, states), matrix[:states, states:])
        self._state.copy_(torch.addmm(ends[:, -1], starts[:, -1], matrix[:states, :states]))
        return out.view(ch, -1)

    def _unit_starts(self, start: torch.Tensor, ends: torch.Tensor, tree) -> torch.Tensor:
        """Start states ``(ch, n, 2N)`` of ``n`` consecutive units given the first one's
        ``start`` ``(ch, 2N)`` and each unit's zero-start end state ``U`` ``(ch, n, 2N)``;
        ``tree``: this level's and the higher levels' matrices (``_refresh_tree``)."""
        (within, total), states = tree[0], start.shape[-1]
        ch, n = ends.shape[:2]
        fan = within.shape[1] // states
        if n <= fan:  # the top: [s_0, U_0, ..., U_(n-1)] @ G
            top = torch.cat([start.unsqueeze(1), ends], 1).view(ch, (n + 1) * states)
            return (top @ within[: (n + 1) * states, : n * states]).view(ch, n, states)
        groups = -(-n // fan)
        padded = torch.nn.functional.pad(ends, (0, 0, 0, groups * fan - n))  # zero U past the end
        by_group = padded.view(ch, groups, fan * states)
        group_starts = self._unit_starts(start, by_group @ total, tree[1:])
        starts = torch.cat([group_starts, by_group], -1) @ within
        return starts.view(ch, groups * fan, states)[:, :n]
