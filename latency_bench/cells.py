"""The benchmark cells: grid, signals, filters, the SciPy oracle, and rtfx's implementations.

A cell is one filter at one block size and channel count. In each cell rtfx (CPU and/or CUDA)
and its peers process the same float32 blocks, as a sound-card callback would hand them.
SciPy peers get the float32 block as it is and, with float64 coefficients and state, compute
in float64 (the way ``sosfilt(sos, block, zi=zi)`` is called in practice). Peers live in
``peers`` (SciPy and the optional libraries) and ``presets`` (preset chains).

The grid sweeps one axis at a time around a default cell (256 frames, 2 channels, an 8th-order
Butterworth lowpass): block size, channels, filter order and family, FIR length, IR length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.signal

SAMPLERATE = 48000
IIR_CUTOFF_HZ = 1000.0
ELLIP_RIPPLE_DB = 0.5
ELLIP_ATTENUATION_DB = 60.0
FIR_CUTOFF_HZ = 4000.0
SEED = 1234
PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"

DEFAULT_FRAMES = 256
DEFAULT_CHANNELS = 2
BLOCK_SIZES = (32, 64, 128, 256, 512, 1024, 2048)
CHANNEL_COUNTS = (1, 2, 8, 64)
IIR_ORDERS = (2, 4, 8, 16)
FIR_TAPS = (32, 128, 512)
IR_SECONDS = (0.1, 1.0, 10.0)
DESIGN_NAMES = {"butter": "Butterworth", "ellip": "elliptic"}


@dataclass(frozen=True)
class Cell:
    """One filter at one block size.

    Args:
        kind: ``"iir"`` (an SOS cascade), ``"fir"`` (short windowed-sinc FIR), ``"ir"`` (a long
            decaying-noise reverb IR) or ``"preset"`` (a bundled preset chain).
        frames: block length.
        channels: channel count.
        design: ``"butter"`` or ``"ellip"`` (``kind == "iir"``).
        order: IIR order (``kind == "iir"``).
        taps: FIR / IR length (``kind`` ``"fir"`` / ``"ir"``).
        preset: preset file (``kind == "preset"``).
        direct_torch: also time the per-sample DF2T loop in plain torch (a sanity reference).
        peer_blocks: caps on timed blocks for slow implementations, by name.
        sweep: which axis this cell belongs to (``"frames"``, ``"channels"``, ``"order"``,
            ``"taps"``, ``"default"``, ``"preset"``): for the report and the plots.
    """

    kind: str
    frames: int
    channels: int
    design: str = "butter"
    order: int = 8
    taps: int = 0
    preset: str = ""
    direct_torch: bool = False
    peer_blocks: dict = field(default_factory=dict, hash=False, compare=False)
    sweep: str = "default"

    @property
    def filter_id(self) -> str:
        if self.kind == "iir":
            return f"{self.design}{self.order}"
        if self.kind == "ir":
            return f"ir{self.taps / SAMPLERATE:g}s"
        if self.kind == "preset":
            return "preset-" + Path(self.preset).stem
        return f"fir{self.taps}"

    @property
    def id(self) -> str:
        return f"{self.filter_id}-f{self.frames}-c{self.channels}"

    @property
    def label(self) -> str:
        if self.kind == "iir":
            return f"IIR {DESIGN_NAMES[self.design]} order {self.order} ({self.sections} SOS)"
        if self.kind == "ir":
            return f"IR {self.taps / SAMPLERATE:g} s ({self.taps} taps)"
        if self.kind == "preset":
            return f"preset {Path(self.preset).name}"
        return f"FIR {self.taps} taps"

    @property
    def sections(self) -> int:
        return math.ceil(self.order / 2) if self.kind == "iir" else 0

    @property
    def description(self) -> str:
        if self.kind == "iir":
            extra = (f", {ELLIP_RIPPLE_DB:g} dB ripple, {ELLIP_ATTENUATION_DB:g} dB stopband"
                     if self.design == "ellip" else "")
            return (f"{DESIGN_NAMES[self.design]} lowpass, order {self.order}, {IIR_CUTOFF_HZ:g} Hz "
                    f"at {SAMPLERATE} Hz{extra}, {self.sections} second-order sections")
        if self.kind == "ir":
            return (f"synthetic reverb IR, {self.taps} taps ({self.taps / SAMPLERATE:g} s): "
                    "seeded Gaussian noise under an exponential decay to -60 dB")
        if self.kind == "preset":
            return f"the bundled preset {self.preset} (rtfx.load_preset), through the live BlockProcessor"
        return f"windowed-sinc lowpass (firwin, Hamming), {self.taps} taps, {FIR_CUTOFF_HZ:g} Hz"

    @property
    def deadline_us(self) -> float:
        return self.frames / SAMPLERATE * 1e6


def discover_presets(directory: Path = PRESET_DIR) -> list[str]:
    """Every ``*.json`` preset bundled in ``assets/presets`` (found at run time), repo-relative."""
    root = PRESET_DIR.parent.parent
    return [str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
            for p in sorted(Path(directory).glob("*.json"))]


def _sweeps(make, default_kw: dict, axis: str, values) -> list[Cell]:
    return [make(**{**default_kw, axis: v}, sweep=axis) for v in values]


def full_grid() -> list[Cell]:
    """One axis at a time around the default cell (256 frames, 2 channels); see ``core.md``."""
    F, C = DEFAULT_FRAMES, DEFAULT_CHANNELS
    cells = [Cell("iir", F, C, design=d, order=o, sweep="default" if (d, o) == ("butter", 8) else "order")
             for d in DESIGN_NAMES for o in IIR_ORDERS]
    iir = dict(kind="iir", frames=F, channels=C)
    cells += [Cell(**{**iir, "frames": f}, sweep="frames", direct_torch=(f == 32),
                   peer_blocks={"torch-df2t": 200}) for f in BLOCK_SIZES if f != F]
    cells += [Cell(**{**iir, "channels": c}, sweep="channels") for c in CHANNEL_COUNTS if c != C]
    cells += [Cell("fir", F, C, taps=t, sweep="taps" if t != 512 else "default") for t in FIR_TAPS]
    cells += [Cell("fir", f, C, taps=512, sweep="frames") for f in (32, 2048)]
    cells += [Cell("fir", F, c, taps=512, sweep="channels") for c in (1, 64)]
    cells += [Cell("ir", F, C, taps=round(s * SAMPLERATE), sweep="taps" if s != 1.0 else "default")
              for s in IR_SECONDS]
    cells += [Cell("ir", f, C, taps=SAMPLERATE, sweep="frames") for f in (64, 1024)]
    cells += [Cell("ir", F, c, taps=SAMPLERATE, sweep="channels") for c in (1, 8)]
    cells += [Cell("preset", f, C, preset=p, sweep="frames" if f != F else "default")
              for p in discover_presets() for f in (64, F, 1024)]
    return cells


def quick_grid() -> list[Cell]:
    """Fewer cells for ``--quick``: one of each kind of question (< 1 min on 2 cores)."""
    F, C = DEFAULT_FRAMES, DEFAULT_CHANNELS
    return [
        Cell("iir", F, C),
        Cell("iir", F, C, design="ellip", order=16, sweep="order"),
        Cell("iir", 32, C, direct_torch=True, peer_blocks={"torch-df2t": 30}, sweep="frames"),
        Cell("iir", F, 64, sweep="channels"),
        Cell("fir", F, C, taps=512),
        Cell("ir", F, C, taps=SAMPLERATE, peer_blocks={"lfilter": 60}),
    ] + [Cell("preset", F, C, preset=p) for p in discover_presets()]


# -- filters and signals ----------------------------------------------------------------------
def iir_sos(cell: Cell) -> np.ndarray:
    if cell.design == "ellip":
        return scipy.signal.ellip(cell.order, ELLIP_RIPPLE_DB, ELLIP_ATTENUATION_DB, IIR_CUTOFF_HZ,
                                  fs=SAMPLERATE, output="sos")
    return scipy.signal.butter(cell.order, IIR_CUTOFF_HZ, fs=SAMPLERATE, output="sos")


def fir_taps(taps: int) -> np.ndarray:
    """Short FIR: a windowed-sinc lowpass. Long (> 2048 taps): a decaying-noise reverb IR."""
    if taps <= 2048:
        return scipy.signal.firwin(taps, FIR_CUTOFF_HZ, fs=SAMPLERATE)
    rng = np.random.default_rng(SEED + taps)
    decay = np.exp(np.log(1e-3) * np.arange(taps) / taps)  # -60 dB at the end
    h = rng.standard_normal(taps) * decay
    return h / np.sqrt(np.sum(h * h))


def signal_frames(cell: Cell, seconds: float | None = None) -> int:
    """Length of the cell's test signal: 1 s, or the IR plus 0.5 s; whole blocks."""
    if seconds is None:
        seconds = max(1.0, cell.taps / SAMPLERATE + 0.5) if cell.kind == "ir" else 1.0
    return math.ceil(seconds * SAMPLERATE / cell.frames) * cell.frames


def make_signal(cell: Cell, frames: int) -> np.ndarray:
    """Seeded white noise, float32 ``(channels, frames)``, peak about 0.5 (0.05 for presets,
    so that no preset reaches the live path's ±1 output clip and the chain stays linear)."""
    rng = np.random.default_rng(SEED)
    peak = 0.05 if cell.kind == "preset" else 0.5
    return (peak * rng.uniform(-1.0, 1.0, (cell.channels, frames))).astype(np.float32)


def to_blocks(x: np.ndarray, frames: int) -> np.ndarray:
    """``(channels, n)`` -> contiguous ``(n // frames, channels, frames)``."""
    channels, n = x.shape
    return np.ascontiguousarray(x.reshape(channels, n // frames, frames).transpose(1, 0, 2))


def reference(cell: Cell, x: np.ndarray) -> np.ndarray | None:
    """The float64 SciPy oracle over the whole signal from zero state (one call, no blocks);
    ``None`` for a preset with a stage SciPy cannot model (see ``presets.scipy_model``)."""
    x64 = x.astype(np.float64)
    if cell.kind == "iir":
        return scipy.signal.sosfilt(iir_sos(cell), x64, axis=-1)
    if cell.kind == "preset":
        from .presets import scipy_reference
        return scipy_reference(cell, x64)
    h = fir_taps(cell.taps)
    return scipy.signal.oaconvolve(x64, h[None, :], axes=-1)[:, : x.shape[-1]]


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    """max |y - ref| / max |ref|."""
    return float(np.max(np.abs(y - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def rtfx_kernel(cell: Cell, device: str, chunk: int | None = None):
    """The rtfx kernel object for an ``iir``/``fir``/``ir`` cell (imported lazily)."""
    if cell.kind == "iir":
        from rtfx.kernels.iir import SosFilter
        return SosFilter(iir_sos(cell), cell.channels, cell.frames, device=device, chunk=chunk)
    from rtfx.kernels.convolution import make_convolver
    return make_convolver(fir_taps(cell.taps), cell.channels, cell.frames, device=device)


def kernel_info(kernel) -> str:
    """``"SosFilter(chunk=64)"``, ``"PartitionedConvolver(partition=64)"``, ..."""
    attrs = [f"{a}={getattr(kernel, a)}" for a in ("chunk", "partition") if hasattr(kernel, a)]
    return f"{type(kernel).__name__}({', '.join(attrs)})"
