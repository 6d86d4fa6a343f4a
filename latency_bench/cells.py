"""The benchmark cells, their signals and filters, and every implementation timed in them.

A cell is one filter at one block size and channel count. In each cell rtfx (CPU and/or CUDA)
and its SciPy peers process the same float32 blocks, as a sound-card callback would hand them.
SciPy gets the float32 block as it is and, with float64 coefficients and state, computes in
float64 (the way ``sosfilt(sos, block, zi=zi)`` is called in practice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.signal
import torch

from .timing import Impl

SAMPLERATE = 48000
IIR_ORDER = 8
IIR_CUTOFF_HZ = 1000.0
FIR_CUTOFF_HZ = 4000.0
SEED = 1234


@dataclass(frozen=True)
class Cell:
    """One filter at one block size.

    Args:
        kind: ``"iir"`` (the Butterworth cascade) or ``"fir"`` (taps, short FIR or long IR).
        frames: block length.
        channels: channel count.
        taps: FIR length (``kind == "fir"``).
        direct_torch: also time the per-sample DF2T loop in plain torch (a sanity reference).
        peer_blocks: caps on timed blocks for slow implementations, by name.
    """

    kind: str
    frames: int
    channels: int
    taps: int = 0
    direct_torch: bool = False
    peer_blocks: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def filter_id(self) -> str:
        if self.kind == "iir":
            return f"iir{IIR_ORDER}"
        if self.taps >= SAMPLERATE // 2:
            return f"ir{self.taps / SAMPLERATE:g}s"
        return f"fir{self.taps}"

    @property
    def id(self) -> str:
        return f"{self.filter_id}-f{self.frames}-c{self.channels}"

    @property
    def label(self) -> str:
        if self.kind == "iir":
            return f"IIR {IIR_ORDER}th-order (4 SOS)"
        if self.taps >= SAMPLERATE // 2:
            return f"IR {self.taps / SAMPLERATE:g} s ({self.taps} taps)"
        return f"FIR {self.taps} taps"

    @property
    def description(self) -> str:
        if self.kind == "iir":
            return (f"Butterworth lowpass, order {IIR_ORDER}, {IIR_CUTOFF_HZ:g} Hz at "
                    f"{SAMPLERATE} Hz, {IIR_ORDER // 2} second-order sections")
        if self.taps >= SAMPLERATE // 2:
            return (f"synthetic reverb IR, {self.taps} taps ({self.taps / SAMPLERATE:g} s): "
                    "seeded Gaussian noise under an exponential decay to -60 dB")
        return f"windowed-sinc lowpass (firwin, Hamming), {self.taps} taps, {FIR_CUTOFF_HZ:g} Hz"

    @property
    def deadline_us(self) -> float:
        return self.frames / SAMPLERATE * 1e6


def full_grid() -> list[Cell]:
    """The default grid."""
    cells = [Cell("iir", f, c, direct_torch=(f == 64 and c == 2), peer_blocks={"torch-df2t": 300})
             for f in (64, 256, 1024) for c in (2, 64)]
    cells += [Cell("fir", f, 2, taps) for taps in (512, 4096) for f in (64, 256)]
    cells += [Cell("fir", f, 2, SAMPLERATE * 2) for f in (64, 256)]
    cells += [Cell("fir", f, 2, SAMPLERATE * 10, peer_blocks={"lfilter": 30}) for f in (64, 256)]
    return cells


def quick_grid() -> list[Cell]:
    """Fewer cells for ``--quick``: one of each kind of question."""
    return [
        Cell("iir", 64, 2, direct_torch=True, peer_blocks={"torch-df2t": 50}),
        Cell("iir", 256, 64),
        Cell("iir", 1024, 2),
        Cell("fir", 64, 2, 4096),
        Cell("fir", 256, 2, SAMPLERATE * 2, peer_blocks={"lfilter": 100}),
    ]


# -- filters and signals ----------------------------------------------------------------------
def iir_sos() -> np.ndarray:
    return scipy.signal.butter(IIR_ORDER, IIR_CUTOFF_HZ, fs=SAMPLERATE, output="sos")


def fir_taps(taps: int) -> np.ndarray:
    """Short FIR: a windowed-sinc lowpass. Long (>= 0.5 s): a decaying-noise reverb IR."""
    if taps < SAMPLERATE // 2:
        return scipy.signal.firwin(taps, FIR_CUTOFF_HZ, fs=SAMPLERATE)
    rng = np.random.default_rng(SEED + taps)
    decay = np.exp(np.log(1e-3) * np.arange(taps) / taps)  # -60 dB at the end
    h = rng.standard_normal(taps) * decay
    return h / np.sqrt(np.sum(h * h))


def signal_frames(cell: Cell, seconds: float | None = None) -> int:
    """Length of the cell's test signal: 1 s, or the IR plus 0.5 s; whole blocks."""
    if seconds is None:
        seconds = 1.0 if cell.kind == "iir" else max(1.0, cell.taps / SAMPLERATE + 0.5)
    return math.ceil(seconds * SAMPLERATE / cell.frames) * cell.frames


def make_signal(cell: Cell, frames: int) -> np.ndarray:
    """Seeded white noise, float32 ``(channels, frames)``, peak about 0.5."""
    rng = np.random.default_rng(SEED)
    return (0.5 * rng.uniform(-1.0, 1.0, (cell.channels, frames))).astype(np.float32)


def to_blocks(x: np.ndarray, frames: int) -> np.ndarray:
    """``(channels, n)`` -> contiguous ``(n // frames, channels, frames)``."""
    channels, n = x.shape
    return np.ascontiguousarray(x.reshape(channels, n // frames, frames).transpose(1, 0, 2))


def reference(cell: Cell, x: np.ndarray) -> np.ndarray:
    """The float64 oracle over the whole signal from zero state (one call, no blocks)."""
    x64 = x.astype(np.float64)
    if cell.kind == "iir":
        return scipy.signal.sosfilt(iir_sos(), x64, axis=-1)
    h = fir_taps(cell.taps)
    return scipy.signal.oaconvolve(x64, h[None, :], axes=-1)[:, : x.shape[-1]]


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    """max |y - ref| / max |ref|."""
    return float(np.max(np.abs(y - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


# -- implementations --------------------------------------------------------------------------
class RtfxKernel:
    """An rtfx kernel on CPU (torch views of the float32 blocks) or CUDA (pinned H2D, D2H)."""

    def __init__(self, kernel, blocks: np.ndarray, device: str):
        self.kernel = kernel
        self.device = device
        if device == "cpu":
            self.x = torch.from_numpy(blocks)
        else:
            self.x = torch.from_numpy(blocks).pin_memory()
            self.dev_in = torch.empty(blocks.shape[1:], dtype=torch.float32, device=device)
            self.host_out = torch.empty(blocks.shape[1:], dtype=torch.float32).pin_memory()

    def step(self, i: int):
        if self.device == "cpu":
            return self.kernel.process(self.x[i])
        self.dev_in.copy_(self.x[i], non_blocking=True)
        self.host_out.copy_(self.kernel.process(self.dev_in), non_blocking=True)
        return self.host_out

    def reset(self) -> None:
        self.kernel.reset()

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return y.detach().cpu().double().numpy()


class SosfiltPeer:
    """``scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)``: all channels in one call, zi carried."""

    def __init__(self, sos: np.ndarray, blocks: np.ndarray):
        self.sos, self.x = sos, blocks
        self.zero = np.zeros((sos.shape[0], blocks.shape[1], 2))
        self.reset()

    def step(self, i: int):
        y, self.zi = scipy.signal.sosfilt(self.sos, self.x[i], axis=-1, zi=self.zi)
        return y

    def reset(self) -> None:
        self.zi = self.zero.copy()

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return np.array(y, dtype=np.float64)


class LfilterCascadePeer:
    """``scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)`` once per section, zi carried."""

    def __init__(self, sos: np.ndarray, blocks: np.ndarray):
        self.ba = [(row[:3].copy(), row[3:].copy()) for row in sos]
        self.x = blocks
        self.channels = blocks.shape[1]
        self.reset()

    def step(self, i: int):
        y = self.x[i]
        for s, (b, a) in enumerate(self.ba):
            y, self.zi[s] = scipy.signal.lfilter(b, a, y, axis=-1, zi=self.zi[s])
        return y

    def reset(self) -> None:
        self.zi = [np.zeros((self.channels, 2)) for _ in self.ba]

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return np.array(y, dtype=np.float64)


class LfilterFirPeer:
    """``scipy.signal.lfilter(h, 1.0, x[c], zi=zi[c])`` per channel, zi carried."""

    def __init__(self, taps: np.ndarray, blocks: np.ndarray):
        self.h, self.x = taps, blocks
        self.channels = blocks.shape[1]
        self.reset()

    def step(self, i: int):
        x, zi, out = self.x[i], self.zi, []
        for c in range(self.channels):
            y, zi[c] = scipy.signal.lfilter(self.h, 1.0, x[c], zi=zi[c])
            out.append(y)
        return out

    def reset(self) -> None:
        self.zi = [np.zeros(len(self.h) - 1) for _ in range(self.channels)]

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return np.stack(y).astype(np.float64)


class TorchDirectForm:
    """A per-sample DF2T loop in plain torch (float32, vectorised over channels only)."""

    def __init__(self, sos: np.ndarray, blocks: np.ndarray):
        self.coef = [tuple(float(v) for v in row) for row in sos]
        self.x = torch.from_numpy(blocks)
        self.channels, self.frames = blocks.shape[1:]
        self.out = torch.empty(self.channels, self.frames)
        self.reset()

    def step(self, i: int):
        x, out, z1, z2 = self.x[i], self.out, self.z1, self.z2
        for n in range(self.frames):
            v = x[:, n]
            for s, (b0, b1, b2, _, a1, a2) in enumerate(self.coef):
                y = v * b0 + z1[s]
                z1[s] = v * b1 - y * a1 + z2[s]
                z2[s] = v * b2 - y * a2
                v = y
            out[:, n] = v
        return out

    def reset(self) -> None:
        self.z1 = [torch.zeros(self.channels) for _ in self.coef]
        self.z2 = [torch.zeros(self.channels) for _ in self.coef]

    @staticmethod
    def to_numpy(y) -> np.ndarray:
        return y.double().numpy()


def _impl(name, role, device, obj, desc, cell: Cell) -> Impl:
    cap = cell.peer_blocks.get(name)
    note = f"timed over at most {cap} blocks: too slow for the cell's count" if cap else ""
    return Impl(name, role, device, obj.step, obj.reset, obj.to_numpy, cap, desc, note)


def rtfx_kernel(cell: Cell, device: str, chunk: int | None = None):
    """The rtfx kernel object for ``cell`` (imported lazily)."""
    if cell.kind == "iir":
        from rtfx.kernels.iir import SosFilter
        return SosFilter(iir_sos(), cell.channels, cell.frames, device=device, chunk=chunk)
    from rtfx.kernels.convolution import make_convolver
    return make_convolver(fir_taps(cell.taps), cell.channels, cell.frames, device=device)


def kernel_info(kernel) -> str:
    """``"SosFilter(chunk=64)"``, ``"PartitionedConvolver(partition=64)"``, ..."""
    attrs = [f"{a}={getattr(kernel, a)}" for a in ("chunk", "partition") if hasattr(kernel, a)]
    return f"{type(kernel).__name__}({', '.join(attrs)})"


def implementations(cell: Cell, blocks: np.ndarray, devices: list[str]) -> list[Impl]:
    """rtfx on each of ``devices``, then the cell's SciPy peers (and the torch DF2T loop)."""
    impls = []
    for device in devices:
        kernel = rtfx_kernel(cell, device)
        desc = ("rtfx on CPU: torch float32, process() on a torch view of the block" if device == "cpu"
                else "rtfx on CUDA, eager: pinned H2D + process() + D2H, synchronised per block")
        impl = _impl(f"rtfx-{device}", "rtfx", device, RtfxKernel(kernel, blocks, device), desc, cell)
        impl.kernel = kernel_info(kernel)
        impls.append(impl)
    if cell.kind == "iir":
        sos = iir_sos()
        impls.append(_impl("sosfilt", "peer", "cpu", SosfiltPeer(sos, blocks),
                           "scipy.signal.sosfilt(sos, x, axis=-1, zi=zi), all channels, zi carried", cell))
        impls.append(_impl("lfilter-cascade", "peer", "cpu", LfilterCascadePeer(sos, blocks),
                           "scipy.signal.lfilter(b, a, x, axis=-1, zi=zi) once per section", cell))
        if cell.direct_torch:
            impls.append(_impl("torch-df2t", "peer", "cpu", TorchDirectForm(sos, blocks),
                               "per-sample DF2T loop in plain torch (sanity reference)", cell))
    else:
        impls.append(_impl("lfilter", "peer", "cpu", LfilterFirPeer(fir_taps(cell.taps), blocks),
                           "scipy.signal.lfilter(h, 1.0, x[c], zi=zi[c]) per channel, zi carried", cell))
    return impls
