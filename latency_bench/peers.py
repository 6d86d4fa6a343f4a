"""Every implementation timed in a filter cell: rtfx's kernels, SciPy, and the optional peers.

An optional peer (TorchFX, torchaudio, pedalboard) that is not installed, cannot run this cell
or fails on its first block becomes an :class:`Unavailable` with the reason: it is reported,
never dropped. Peers are called the way their documentation streams audio: one call per block,
state carried where the library keeps it; where a library keeps no state between calls, the
entry's note says so and its error column shows what that costs.
"""
from __future__ import annotations

import importlib

import numpy as np
import scipy.signal
import torch

from . import cells as C
from .timing import Impl, Unavailable

PEDALBOARD_IR_NORM = 0.125   # JUCE's Convolution normalises an IR to this L2 norm


def optional_module(name: str):
    """``(module, None)`` or ``(None, "not installed: ...")`` / ``(None, "import failed: ...")``."""
    try:
        return importlib.import_module(name), None
    except ModuleNotFoundError as exc:
        return None, f"not installed ({exc})"
    except Exception as exc:  # a broken build (e.g. a binary extension for another torch)
        return None, f"import failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


# -- rtfx --------------------------------------------------------------------------------------
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


class TorchModulePeer(RtfxKernel):
    """A torch callable ``module(x) -> y`` per block (TorchFX, torchaudio), same data path as
    rtfx: CPU views, or pinned H2D + call + D2H on CUDA. ``reset`` is the peer's own."""

    def __init__(self, call, reset, blocks: np.ndarray, device: str):
        self.call, self._reset = call, reset
        super().__init__(self, blocks, device)

    def process(self, x):   # the "kernel" interface RtfxKernel.step calls
        return self.call(x)

    def reset(self) -> None:
        self._reset()


# -- SciPy -------------------------------------------------------------------------------------
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


class LfilterCascadePeer(SosfiltPeer):
    """``scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)`` once per section, zi carried."""

    def step(self, i: int):
        y = self.x[i]
        for s, row in enumerate(self.sos):
            y, self.zi[s] = scipy.signal.lfilter(row[:3], row[3:], y, axis=-1, zi=self.zi[s])
        return y


class LfilterFirPeer:
    """``scipy.signal.lfilter(h, 1.0, x[c], zi=zi[c])`` per channel, zi carried (the naive
    direct-form FIR path)."""

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


# -- optional peers ----------------------------------------------------------------------------
def torchfx_filter(cell: C.Cell):
    """TorchFX's own module for the cell's filter (its design, stateful DF1 for IIR)."""
    import torchfx.filter as tf
    if cell.kind == "iir" and cell.design == "butter":
        return tf.LoButterworth(C.IIR_CUTOFF_HZ, order=cell.order, fs=C.SAMPLERATE)
    if cell.kind == "iir":
        return tf.LoElliptic(C.IIR_CUTOFF_HZ, order=cell.order, passband_ripple=C.ELLIP_RIPPLE_DB,
                             stopband_attenuation=C.ELLIP_ATTENUATION_DB, fs=C.SAMPLERATE)
    return tf.FIR(C.fir_taps(cell.taps))


def torchfx_impls(cell: C.Cell, blocks: np.ndarray, devices: list[str]) -> list:
    mod, why = optional_module("torchfx")
    names = [f"torchfx-{d}" for d in devices]
    if mod is None:
        return [Unavailable(n, "missing", why) for n in names]
    out = []
    for name, device in zip(names, devices):
        module = torchfx_filter(cell).to(device)
        reset = getattr(module, "reset_state", lambda: None)
        stateful = cell.kind == "iir"
        note = ("stateful: its DF1 state carries between calls" if stateful else
                "torchfx FIR keeps no state between calls: each block restarts from zero history")
        native = getattr(mod, "is_native_available", lambda: None)()
        desc = (f"torchfx {getattr(mod, '__version__', '?')} {type(module).__name__}(x) per block on "
                f"{device} (native extension: {native})")
        obj = TorchModulePeer(module, reset, blocks, device)
        out.append(Impl(name, "peer", device, obj.step, obj.reset, obj.to_numpy, None, desc,
                        note=note))
    return out


def torchaudio_impls(cell: C.Cell, blocks: np.ndarray, devices: list[str]) -> list:
    names = [f"torchaudio-{d}" for d in devices]
    if cell.kind not in ("iir", "fir"):
        why = "n/a: torchaudio.functional.lfilter would run the IR as a recursion of its length"
        return [Unavailable(n, "n/a", why) for n in names]
    mod, why = optional_module("torchaudio.functional")
    if mod is None:
        return [Unavailable(n, "missing", why) for n in names]
    if cell.kind == "iir":
        rows = [(r[:3], r[3:]) for r in C.iir_sos(cell)]
    else:
        h = C.fir_taps(cell.taps)
        rows = [(h, np.r_[1.0, np.zeros(len(h) - 1)])]
    out = []
    for name, device in zip(names, devices):
        coefs = [(torch.tensor(b, dtype=torch.float32, device=device),
                  torch.tensor(a, dtype=torch.float32, device=device)) for b, a in rows]

        def call(x, coefs=coefs):
            for b, a in coefs:
                x = mod.lfilter(x, a, b, clamp=False)
            return x

        obj = TorchModulePeer(call, lambda: None, blocks, device)
        out.append(Impl(name, "peer", device, obj.step, obj.reset, obj.to_numpy, None,
                        f"torchaudio.functional.lfilter(x, a, b, clamp=False) per "
                        f"{'section' if cell.kind == 'iir' else 'block'} on {device}",
                        note="lfilter takes no initial state: each block restarts from zero state"))
    return out


class PedalboardPeer:
    """``pedalboard.Convolution(ir).process(x, sr, reset=False)`` per block (JUCE, float32).

    JUCE normalises the IR to an L2 norm of 0.125; outputs are rescaled (outside the clock)
    by ``||h|| / 0.125`` before the error check, so the error is the convolution's own.
    """

    def __init__(self, pedalboard, taps: np.ndarray, blocks: np.ndarray):
        self.x = blocks
        self.scale = float(np.sqrt(np.sum(taps * taps))) / PEDALBOARD_IR_NORM
        self.plugin = pedalboard.Convolution(taps.astype(np.float32), mix=1.0,
                                             sample_rate=float(C.SAMPLERATE))
        self.reset()

    def step(self, i: int):
        return self.plugin.process(self.x[i], float(C.SAMPLERATE), reset=False)

    def reset(self) -> None:
        self.plugin.reset()

    def to_numpy(self, y) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) * self.scale


def pedalboard_impls(cell: C.Cell, blocks: np.ndarray) -> list:
    if cell.kind not in ("fir", "ir"):
        return [Unavailable("pedalboard", "n/a", "n/a: pedalboard has no filter taking arbitrary "
                            "SOS coefficients (its IIR filters are fixed one-biquad designs)")]
    mod, why = optional_module("pedalboard")
    if mod is None:
        return [Unavailable("pedalboard", "missing", why)]
    obj = PedalboardPeer(mod, C.fir_taps(cell.taps), blocks)
    return [Impl("pedalboard", "peer", "cpu", obj.step, obj.reset, obj.to_numpy, None,
                 f"pedalboard {mod.__version__} Convolution(ir).process(x, sr, reset=False) per block",
                 note="JUCE normalises the IR; output rescaled by ||h||/0.125 outside the clock")]


# -- all of a filter cell ----------------------------------------------------------------------
def _impl(name, role, device, obj, desc, cell: C.Cell, note: str = "") -> Impl:
    return Impl(name, role, device, obj.step, obj.reset, obj.to_numpy,
                cell.peer_blocks.get(name), desc, note)


def implementations(cell: C.Cell, blocks: np.ndarray, devices: list[str]) -> list:
    """rtfx on each of ``devices``, the SciPy peers, then the optional peers (or why not)."""
    impls = []
    for device in devices:
        kernel = C.rtfx_kernel(cell, device)
        desc = ("rtfx on CPU: torch float32, process() on a torch view of the block" if device == "cpu"
                else "rtfx on CUDA, eager: pinned H2D + process() + D2H, synchronised per block")
        impl = _impl(f"rtfx-{device}", "rtfx", device, RtfxKernel(kernel, blocks, device), desc, cell)
        impl.kernel = C.kernel_info(kernel)
        impls.append(impl)
    if cell.kind == "iir":
        sos = C.iir_sos(cell)
        impls.append(_impl("sosfilt", "peer", "cpu", SosfiltPeer(sos, blocks),
                           "scipy.signal.sosfilt(sos, x, axis=-1, zi=zi), all channels, zi carried", cell))
        impls.append(_impl("lfilter-cascade", "peer", "cpu", LfilterCascadePeer(sos, blocks),
                           "scipy.signal.lfilter(b, a, x, axis=-1, zi=zi) once per section", cell))
        if cell.direct_torch:
            impls.append(_impl("torch-df2t", "peer", "cpu", TorchDirectForm(sos, blocks),
                               "per-sample DF2T loop in plain torch (sanity reference)", cell))
    else:
        impls.append(_impl("lfilter", "peer", "cpu", LfilterFirPeer(C.fir_taps(cell.taps), blocks),
                           "scipy.signal.lfilter(h, 1.0, x[c], zi=zi[c]) per channel, zi carried", cell))
    impls += _guarded(torchfx_impls, [f"torchfx-{d}" for d in devices], cell, blocks, devices)
    impls += _guarded(torchaudio_impls, [f"torchaudio-{d}" for d in devices], cell, blocks, devices)
    impls += _guarded(pedalboard_impls, ["pedalboard"], cell, blocks)
    return impls


def _guarded(make, names: list[str], *args) -> list:
    """``make(*args)``, or one ``Unavailable("failed")`` per name if building the peer raised."""
    try:
        return make(*args)
    except Exception as exc:
        why = f"setup failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        return [Unavailable(n, "failed", why, device=n.rsplit("-", 1)[-1] if "-" in n else "cpu")
                for n in names]
