"""Offline throughput in TorchFX's paper setup: whole signals through its IIR and FIR chains.

TorchFX (Spanio & Rodà, DAFx 2025; ``benchmarks/`` of its repository) times a chain over a
whole multichannel signal of random noise at 44.1 kHz, for a grid of channels × durations,
against SciPy ``lfilter``. Its chains, re-stated here from their parameters:

- IIR: Butterworth highpass 1 kHz, Butterworth lowpass 5 kHz, Chebyshev-I highpass 1.5 kHz,
  Chebyshev-I lowpass 1.8 kHz, all order 2 (0.5 dB ripple).
- FIR: five windowed-sinc lowpasses (``firwin``) of 101-105 taps at 1, 5, 1.5, 1.8, 1.85 kHz.

A third chain is the GPU issue's target: one 8th-order Butterworth lowpass at 1 kHz on 48 kHz
noise (``butter8``), 8 and 64 channels x 60 s.

Here the chains run through rtfx (a ``Chain`` of ``sos`` / ``fir`` effects: on the CPU in blocks
of ``BLOCK`` frames; on CUDA the whole signal as one block, so IIR filters run in parallel over
time by the chunked state-space scan), SciPy and the optional peers. The
signal sits on the device before the clock starts and the output stays there (synchronised on
CUDA), as in TorchFX's benchmark. Each timing is the median of ``reps`` runs (``FAST_REPS`` for
those under 0.1 s; one run where ``reps`` would not fit the time budget); an implementation whose predicted time (from a 1 s
slice) exceeds the budget is reported as skipped, with the prediction. Errors: max relative error against float64 SciPy on the whole signal.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import scipy.signal
import torch

from .peers import PEDALBOARD_IR_NORM, optional_module

SAMPLERATE = 44100
BUTTER8_RATE, BUTTER8_CUTOFF_HZ = 48000, 1000.0
BLOCK = 4096
FAST_REPS = 20  # runs of an implementation predicted under 0.1 s (a median of 3 is too noisy)
SEED = 99
IIR_STAGES = [("butter", "highpass", 1000.0), ("butter", "lowpass", 5000.0),
              ("cheby1", "highpass", 1500.0), ("cheby1", "lowpass", 1800.0)]
CHEBY_RIPPLE_DB = 0.5
FIR_STAGES = [(101, 1000.0), (102, 5000.0), (103, 1500.0), (104, 1800.0), (105, 1850.0)]


def full_grid() -> list[tuple[str, int, float]]:
    """``(chain, channels, seconds)``: channels 1, 8, 64 at 60 s; durations 1, 60, 600 s at 8
    channels (the corners and middle of TorchFX's grid, one axis at a time)."""
    cells = []
    for chain in ("iir", "fir"):
        cells += [(chain, c, 60.0) for c in (1, 8, 64)]
        cells += [(chain, 8, s) for s in (1.0, 600.0)]
    return cells + [("butter8", c, 60.0) for c in (8, 64)]


def quick_grid() -> list[tuple[str, int, float]]:
    return [(chain, c, 1.0) for chain in ("iir", "fir") for c in (1, 8)] + [("butter8", 2, 1.0)]


def rate(chain: str) -> int:
    """The chain's sample rate in Hz."""
    return BUTTER8_RATE if chain == "butter8" else SAMPLERATE


def butter8_sos() -> np.ndarray:
    return scipy.signal.butter(8, BUTTER8_CUTOFF_HZ, fs=BUTTER8_RATE, output="sos")


def iir_sos() -> list[np.ndarray]:
    out = []
    for family, btype, hz in IIR_STAGES:
        if family == "butter":
            out.append(scipy.signal.butter(2, hz, btype=btype, fs=SAMPLERATE, output="sos"))
        else:
            out.append(scipy.signal.cheby1(2, CHEBY_RIPPLE_DB, hz, btype=btype, fs=SAMPLERATE, output="sos"))
    return out


def fir_taps() -> list[np.ndarray]:
    return [scipy.signal.firwin(n, hz, fs=SAMPLERATE) for n, hz in FIR_STAGES]


def make_signal(channels: int, seconds: float, samplerate: int = SAMPLERATE) -> np.ndarray:
    """Seeded Gaussian noise normalised to peak 1, float32 ``(channels, n)`` (TorchFX's signal)."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((channels, int(seconds * samplerate)), dtype=np.float32)
    x /= np.abs(x).max()
    return x


def reference(chain: str, x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    if chain != "fir":
        return scipy.signal.sosfilt(_sos(chain), x64, axis=-1)
    h = fir_taps()[0]
    for t in fir_taps()[1:]:
        h = np.convolve(h, t)
    return scipy.signal.oaconvolve(x64, h[None, :], axes=-1)[:, : x.shape[-1]]


def _sos(chain: str) -> np.ndarray:
    """The IIR chain's sections, ``(N, 6)``."""
    return butter8_sos() if chain == "butter8" else np.vstack(iir_sos())


# -- implementations: name -> (device, setup(x) -> run() -> output) ----------------------------
def _rtfx(chain: str, device: str):
    from rtfx.chain import Chain
    from rtfx.effects.convolution import FIR
    from rtfx.effects.sos_effect import Sos
    from rtfx.spec import ProcessSpec

    def setup(x: np.ndarray):
        stages = ([Sos(s) for s in iir_sos()] if chain == "iir" else [Sos(butter8_sos())] if chain == "butter8"
                  else [FIR(taps=h) for h in fir_taps()])
        block = x.shape[1] if device == "cuda" else BLOCK
        fx = Chain(*stages).prepare(ProcessSpec(rate(chain), block, x.shape[0], device=device))
        xt = torch.from_numpy(x).to(device)

        def run():
            fx.reset()
            return fx.process(xt)
        return run
    return setup


def _scipy(chain: str, how: str):
    def setup(x: np.ndarray):
        if chain != "fir" and how == "sosfilt":
            sos = _sos(chain)
            return lambda: scipy.signal.sosfilt(sos, x, axis=-1)
        if chain != "fir":  # one lfilter per section
            ba = [(s[:3], s[3:]) for s in _sos(chain)]
        else:
            ba = [(h, 1.0) for h in fir_taps()]

        def run():
            y = x
            for b, a in ba:
                y = (scipy.signal.lfilter(b, a, y, axis=-1) if how == "lfilter"
                     else scipy.signal.oaconvolve(y, b[None, :], axes=-1)[:, : x.shape[-1]])
            return y
        return run
    return setup


def _torchfx(chain: str, device: str):
    import torchfx.filter as tf

    def setup(x: np.ndarray):
        if chain == "butter8":
            mods = [tf.LoButterworth(BUTTER8_CUTOFF_HZ, order=8, fs=BUTTER8_RATE)]
        elif chain == "iir":
            mods = [tf.HiButterworth(1000, order=2, fs=SAMPLERATE), tf.LoButterworth(5000, order=2, fs=SAMPLERATE),
                    tf.HiChebyshev1(1500, order=2, ripple=CHEBY_RIPPLE_DB, fs=SAMPLERATE),
                    tf.LoChebyshev1(1800, order=2, ripple=CHEBY_RIPPLE_DB, fs=SAMPLERATE)]
        else:
            mods = [tf.FIR(h) for h in fir_taps()]
        seq = torch.nn.Sequential(*mods).to(device)
        xt = torch.from_numpy(x).to(device)

        def run():
            for m in mods:
                getattr(m, "reset_state", lambda: None)()
            return seq(xt)
        return run
    return setup


def _torchaudio(chain: str, device: str):
    import torchaudio.functional as taf

    def setup(x: np.ndarray):
        xt = torch.from_numpy(x).to(device)
        if chain != "fir":  # one lfilter per section (a single order-8 lfilter is unusable in float32)
            ba = [(torch.tensor(s[:3], dtype=torch.float32, device=device),
                   torch.tensor(s[3:], dtype=torch.float32, device=device)) for s in _sos(chain)]

            def run():
                y = xt
                for b, a in ba:
                    y = taf.lfilter(y, a, b, clamp=False)
                return y
            return run
        hs = [torch.tensor(h, dtype=torch.float32, device=device)[None, :] for h in fir_taps()]

        def run():
            y = xt
            for h in hs:
                y = taf.fftconvolve(y, h.expand(y.shape[0], -1))[:, : xt.shape[-1]]
            return y
        return run
    return setup


def _pedalboard(chain: str):
    import pedalboard

    def setup(x: np.ndarray):
        taps = fir_taps()
        board = pedalboard.Pedalboard([pedalboard.Convolution(h.astype(np.float32), sample_rate=SAMPLERATE)
                                       for h in taps])
        scale = float(np.prod([np.sqrt(np.sum(h * h)) / PEDALBOARD_IR_NORM for h in taps]))
        return lambda: board.process(x, SAMPLERATE, reset=True) * np.float32(scale)
    return setup


def implementations(chain: str, devices: list[str]) -> list[tuple[str, str, object, str | None]]:
    """``(name, device, setup or None, reason)``; a peer that cannot run here has a reason."""
    out = [(f"rtfx-{d}", d, _rtfx(chain, d), None) for d in devices]
    if chain != "fir":
        out.append(("sosfilt", "cpu", _scipy(chain, "sosfilt"), None))
    out.append(("lfilter", "cpu", _scipy(chain, "lfilter"), None))
    if chain == "fir":
        out.append(("oaconvolve", "cpu", _scipy(chain, "oaconvolve"), None))
    for lib, make in (("torchfx", _torchfx), ("torchaudio", _torchaudio)):
        mod, why = optional_module(lib if lib == "torchfx" else "torchaudio.functional")
        for d in devices:
            out.append((f"{lib}-{d}", d, make(chain, d) if mod else None, why))
    if chain == "fir":
        mod, why = optional_module("pedalboard")
        out.append(("pedalboard", "cpu", _pedalboard(chain) if mod else None, why))
    else:
        out.append(("pedalboard", "cpu", None, "n/a: no arbitrary-coefficient IIR filter"))
    return out


def _timed(run, device: str) -> tuple[float, object]:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    y = run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, y


def _rel_err(y, ref: np.ndarray, scale: float) -> float:
    """max |y - ref| / scale, one channel at a time (long signals: no full float64 copies)."""
    worst = 0.0
    for c in range(ref.shape[0]):
        row = y[c].detach().cpu().double().numpy() if isinstance(y, torch.Tensor) else np.asarray(y[c], np.float64)
        worst = max(worst, float(np.max(np.abs(row - ref[c]))))
    return worst / scale


def _failed(device: str, exc: Exception) -> dict:
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return {"device": device, "status": "failed", "reason": f"{type(exc).__name__}: {first}"}


def run_cell(chain: str, channels: int, seconds: float, devices: list[str], reps: int,
             budget_s: float) -> dict:
    """Probe every implementation on 1 s of the signal, skip those predicted over ``budget_s``,
    then time the others on the whole signal (built, with its reference, only if one runs)."""
    rec = {"chain": chain, "channels": channels, "seconds": seconds, "samplerate": rate(chain),
           "reps": reps, "impls": {}}
    probe = make_signal(channels, min(seconds, 1.0), rate(chain))
    frames = int(seconds * rate(chain))
    planned, impls = [], implementations(chain, devices)
    for name, device, setup, reason in impls:
        if setup is None:
            rec["impls"][name] = {"device": device, "status": "n/a" if reason.startswith("n/a") else "missing",
                                  "reason": reason}
            continue
        try:
            run = setup(probe)
            _timed(run, device)                      # warm-up (plans, kernels, caches)
            predicted = _timed(run, device)[0] * frames / probe.shape[1]
        except Exception as exc:
            rec["impls"][name] = _failed(device, exc)
            continue
        if predicted > budget_s:
            rec["impls"][name] = {"device": device, "status": "skipped", "predicted_s": predicted,
                                  "reason": f"predicted {predicted:.0f} s (from a 1 s slice) > budget {budget_s:g} s"}
        else:
            planned.append((name, device, setup, predicted))
    if planned:
        x = probe if frames == probe.shape[1] else make_signal(channels, seconds, rate(chain))
        ref = reference(chain, x)
        scale = float(np.abs(ref).max())
    for name, device, setup, predicted in planned:
        try:
            run = setup(x)
            n = 1 if predicted * reps > budget_s else FAST_REPS if predicted < 0.1 else reps
            times, y = [], None
            for _ in range(n):
                t, y = _timed(run, device)
                times.append(t)
            err = _rel_err(y, ref, scale)
        except Exception as exc:
            rec["impls"][name] = _failed(device, exc)
            continue
        rec["impls"][name] = {"device": device, "status": "ok", "runs": n,
                              "median_s": float(np.median(times)), "min_s": float(np.min(times)),
                              "realtime_x": seconds / float(np.median(times)), "max_rel_err": err}
        del y
    rec["impls"] = {name: rec["impls"][name] for name, *_ in impls}   # declaration order
    base = {k: e for k, e in rec["impls"].items() if k.startswith("rtfx-") and e["status"] == "ok"}
    rec["speedup"] = {r: {p: e["median_s"] / b["median_s"] for p, e in rec["impls"].items()
                          if not p.startswith("rtfx-") and e["status"] == "ok"} for r, b in base.items()}
    return rec


def run(devices: list[str], quick: bool, reps: int | None = None, budget_s: float | None = None,
        log=sys.stderr, chains: list[str] | None = None) -> list[dict]:
    """Run the offline grid (``chains``: only those chains' cells); one record per cell."""
    grid = [cell for cell in (quick_grid() if quick else full_grid()) if chains is None or cell[0] in chains]
    reps = reps or (1 if quick else 3)
    budget_s = budget_s or (5.0 if quick else 15.0)
    out = []
    with torch.inference_mode():
        for k, (chain, ch, sec) in enumerate(grid, 1):
            t0 = time.perf_counter()
            rec = run_cell(chain, ch, sec, devices, reps, budget_s)
            out.append(rec)
            if log is not None:
                parts = [f"{n} {e['median_s']:.3f} s" if e["status"] == "ok" else f"{n} {e['status']}"
                         for n, e in rec["impls"].items()]
                print(f"[offline {k}/{len(grid)}] {chain} {ch} ch × {sec:g} s: " + ", ".join(parts)
                      + f" ({time.perf_counter() - t0:.1f} s)", file=log, flush=True)
    return out
