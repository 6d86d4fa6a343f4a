#!/usr/bin/env python3
"""Make rtfx's demo audio and impulse responses, deterministically, from nothing but DSP.

    audio/guitar_di.wav  dry guitar DI riff (extended Karplus-Strong), 48 kHz mono, 24-bit
    audio/voice.wav      dry spoken phrase (espeak-ng, resampled to 48 kHz), mono, 24-bit
    ir/cab_4x12.wav      guitar-cabinet IR from a filter cascade, 40 ms mono, float32
    ir/room.wav          stereo room reverb IR, 0.8 s, float32
    ir/hall.wav          stereo hall reverb IR, 2.5 s, float32

Run `make assets` (installs espeak-ng) or `.venv/bin/python assets/make_assets.py`.
IRs are normalised to unit energy per channel (stereo: averaged over L, R): white noise in, same RMS out.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.io import wavfile

FS = 48_000
HERE = Path(__file__).resolve().parent
NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def db(x: float) -> float:
    return 20 * np.log10(max(float(x), 1e-12))


def midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def biquad(kind: str, f0: float, q: float, gain_db: float = 0.0) -> np.ndarray:
    """One RBJ-cookbook section as an sos row [b0 b1 b2 1 a1 a2]."""
    w, amp = 2 * np.pi * f0 / FS, 10 ** (gain_db / 40)
    al, c = np.sin(w) / (2 * q), np.cos(w)
    if kind == "peak":
        b, a = [1 + al * amp, -2 * c, 1 - al * amp], [1 + al / amp, -2 * c, 1 - al / amp]
    elif kind == "lowpass":
        b, a = [(1 - c) / 2, 1 - c, (1 - c) / 2], [1 + al, -2 * c, 1 - al]
    else:
        raise ValueError(kind)
    return np.hstack([b, a]) / a[0]


# ------------------------------------------------------------------------- guitar
def pluck(f0, n, n_off, vel, rng, mute=False, pick=0.13):
    """One plucked string, extended Karplus-Strong (Jaffe & Smith 1983), n samples long.

    Loop: z^-N, loss filter rho*(1 + z^-1)/2 (exactly 0.5 sample of delay), first-order allpass
    for the fractional rest of the period. The loop is one rational transfer function, so
    lfilter runs it. The excitation is a noise burst, lowpassed (softer = darker), through the
    pick-position comb 1 - z^-M. At n_off the fretting hand damps the string."""
    period = FS / f0
    N = int(np.floor(period - 0.6))                   # leaves the allpass 0.1 .. 1.1 samples
    d = period - 0.5 - N
    w = 2 * np.pi * f0 / FS
    C = np.sin((1 - d) * w / 2) / np.sin((1 + d) * w / 2)   # phase delay exactly d at f0
    t60 = 0.12 if mute else 4.5 * (82.4 / f0) ** 0.6        # low strings ring longer
    rho = 10 ** (-3 / (t60 * f0))                           # loop gain per period
    # Y/X = (1 + C z^-1) / (1 + C z^-1 - rho z^-N (1 + z^-1)/2 (C + z^-1))
    a = np.zeros(N + 3)
    a[:2] = 1, C
    a[N:] -= rho * 0.5 * np.array([C, 1 + C, 1])
    p = int(round(period))
    burst = rng.standard_normal(p)
    pole = (0.85 if mute else 0.55) - 0.45 * vel
    burst = signal.lfilter([1 - pole], [1, -pole], burst - burst.mean())
    burst *= vel / np.abs(burst).max()
    m = max(1, int(round(pick * period)))
    x = np.zeros(n)
    x[:p] += burst
    x[m:m + p] -= burst
    y = signal.lfilter([1, C], a, x)
    y[n_off:] *= np.exp(-np.arange(n - n_off) / (0.012 * FS))
    return y


def estimate_f0(x, fmin=60.0, fmax=1000.0):
    """Autocorrelation (unbiased) pitch with parabolic interpolation."""
    x = x - x.mean()
    r = signal.correlate(x, x, mode="full", method="fft")[len(x) - 1:]
    r /= len(x) - np.arange(len(x))
    lo, hi = int(FS / fmax), int(FS / fmin)
    k = lo + int(np.argmax(r[lo:hi] > 0.9 * r[lo:hi].max()))
    while r[k + 1] > r[k]:
        k += 1
    den = r[k - 1] - 2 * r[k] + r[k + 1]
    return FS / (k + 0.5 * (r[k - 1] - r[k + 1]) / den)


E5, G5, A5, C5, D5, MUTE_E = [40, 47, 52], [43, 50, 55], [45, 52, 57], [48, 55, 60], [50, 57, 62], [40, 47]
RIFF = [  # (start beat, length in beats, MIDI notes low to high, velocity 0..1, palm-muted)
    (0.0, 1.0, E5, 0.95, False), (1.0, 0.5, MUTE_E, 0.6, True), (1.5, 0.5, MUTE_E, 0.65, True),
    (2.0, 1.0, G5, 0.9, False), (3.0, 1.0, A5, 0.9, False),
    (4.0, 0.5, MUTE_E, 0.6, True), (4.5, 0.5, MUTE_E, 0.65, True),
    *[(5.0 + 0.5 * i, 0.5, [m], 0.8, False) for i, m in enumerate([55, 57, 59, 62, 59, 57])],
    (8.0, 1.0, C5, 0.9, False), (9.0, 1.0, D5, 0.9, False), (10.0, 2.0, E5, 1.0, False),
]


def make_guitar(path: Path, bpm=126.0):
    rng = np.random.default_rng(2024)
    beat = 60.0 / bpm
    n = int((12 * beat + 0.35) * FS)
    mix, pitches = np.zeros(n), {}
    for start, length, notes, vel, mute in RIFF:
        for i, m in enumerate(notes):                         # downstroke: low string first
            t0 = start * beat + 0.009 * i + rng.uniform(-0.004, 0.004)
            i0, i_off = int(t0 * FS), int((start + length) * beat * FS)
            f0 = midi_hz(m + rng.uniform(-0.02, 0.02))        # strings a little out of tune
            v = vel * rng.uniform(0.85, 1.0) * (0.8 if i else 1.0)
            voice = pluck(f0, n - i0, i_off - i0, v, rng, mute)
            mix[i0:] += voice
            seg = voice[int(0.02 * FS):int(0.25 * FS)]
            pitches.setdefault(m, []).append((f0, estimate_f0(seg)))
    pickup = np.vstack([biquad("lowpass", 4200, 1.6), signal.butter(2, 40, "high", fs=FS, output="sos")])
    mix = signal.sosfilt(pickup, mix)                          # pickup + cable resonance, no DC
    mix *= 10 ** (-6 / 20) / np.abs(mix).max()                 # DI level: peaks at -6 dBFS
    sf.write(path, mix, FS, subtype="PCM_24")
    print("  fundamentals played (as tuned, each string a little off; measured by autocorrelation):")
    for m in sorted(pitches):
        f = np.array(pitches[m])
        err = 1200 * np.log2(f[:, 1] / f[:, 0])
        print(f"    {NAMES[m % 12]}{m // 12 - 1:<2} {midi_hz(m):7.2f} Hz  x{len(f):<2} tuned {f[:, 0].min():7.2f}.."
              f"{f[:, 0].max():7.2f} Hz  measured {f[:, 1].min():7.2f}..{f[:, 1].max():7.2f} Hz  "
              f"error <= {np.abs(err).max():.2f} cents")


# ------------------------------------------------------------------------- voice
def make_voice(path: Path, text="Check, one, two. A dry voice, for testing effects."):
    exe = shutil.which("espeak-ng")
    if exe is None:
        print(f"  espeak-ng not found (apt-get install espeak-ng): {path.name} left as it is")
        return False
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "voice.wav"
        subprocess.run([exe, "-v", "en-us+m3", "-s", "175", "-p", "42", "-w", str(raw), text], check=True)
        x, fs_in = sf.read(raw)
    g = gcd(FS, fs_in)
    y = signal.resample_poly(x, FS // g, fs_in // g)
    env = np.abs(y) > 10 ** (-45 / 20) * np.abs(y).max()       # trim silence, keep 80 ms margins
    i0, i1 = np.argmax(env), len(y) - np.argmax(env[::-1])
    y = y[max(0, i0 - int(0.08 * FS)):i1 + int(0.08 * FS)]
    y *= 10 ** (-6 / 20) / np.abs(y).max()
    sf.write(path, y, FS, subtype="PCM_24")
    return True


# ------------------------------------------------------------------------- impulse responses
def make_cab(path: Path, length=0.040):
    sos = np.vstack([
        signal.butter(2, 80, "high", fs=FS, output="sos"),          # closed-back low cut
        biquad("peak", 115, 1.4, 5.0),                              # cabinet/cone resonance
        biquad("peak", 650, 0.9, -3.0),                             # low-mid scoop
        biquad("peak", 2800, 1.8, 6.0),                             # presence peak
        *[biquad("peak", f, q, g) for f, q, g in                    # cone-breakup notches
          [(1650, 6, -3), (3600, 7, -8), (4400, 8, -7), (6300, 8, -9)]],
        signal.butter(6, 5200, "low", fs=FS, output="sos"),         # steep top-end roll-off
    ])
    full = signal.sosfilt(sos, signal.unit_impulse(4 * int(length * FS)))
    h = full[:int(length * FS)].copy()
    fade = int(0.005 * FS)
    h[-fade:] *= np.hanning(2 * fade)[fade:]
    print(f"  energy past {length * 1000:.0f} ms: {10 * np.log10(np.sum(full[len(h):] ** 2) / np.sum(full ** 2)):.0f} dB")
    h /= np.sqrt(np.sum(h ** 2))
    freqs = [60, 100, 115, 250, 650, 1000, 2800, 3600, 5000, 8000, 12000]
    _, resp = signal.freqz(h, worN=freqs, fs=FS)
    print("  response: " + ", ".join(f"{f} Hz {db(abs(r)):+.1f}" for f, r in zip(freqs, resp)) + " dB")
    wavfile.write(path, FS, h.astype(np.float32))   # float32 WAV; sf.write would add a timestamp


T60_FREQ = [63, 125, 250, 500, 1000, 2000, 4000, 8000, 16000, 24000]
T60_RATIO = [1.35, 1.3, 1.15, 1.05, 1.0, 0.9, 0.72, 0.5, 0.3, 0.2]    # treble dies faster


def make_reverb(path: Path, length, t60, predelay, n_early, early_span, build, seed):
    """Exponentially decaying noise, T60 per frequency (STFT-domain envelope), after a pre-delay
    and a few early reflections; independent noise and reflections per channel (decorrelated)."""
    rng = np.random.default_rng(seed)
    n, n0 = int(length * FS), int(predelay * FS)
    f, t, Z = signal.stft(rng.standard_normal((2, n - n0)), fs=FS, nperseg=1024, noverlap=768)
    t60_f = t60 * np.interp(np.log2(np.maximum(f, 20)), np.log2(T60_FREQ), T60_RATIO)
    Z *= np.exp(-6.9078 * t[None, :] / t60_f[:, None])           # -60 dB at T60(f)
    tail = signal.istft(Z, fs=FS, nperseg=1024, noverlap=768)[1][:, :n - n0]
    tail *= 1 - np.exp(-np.arange(n - n0) / (build * FS))         # diffuse field builds up
    h = np.zeros((2, n))
    h[:, n0:] = tail
    for ch in range(2):
        early = np.zeros(n)
        times = np.sort(rng.uniform(0, early_span, n_early))
        times[0] = 0.0                                             # first reflection at pre-delay
        for k, tk in enumerate(times):
            early[n0 + int(tk * FS)] += rng.choice([-1, 1]) * 5.0 * 0.85 ** k
        h[ch] += signal.sosfilt(signal.butter(1, 7000, fs=FS, output="sos"), early)  # wall absorption
    fade = int(0.1 * length * FS)
    h[:, -fade:] *= np.hanning(2 * fade)[fade:]
    h /= np.sqrt(np.mean(np.sum(h ** 2, axis=1)))
    bands = []
    for fc in (250, 1000, 4000):                                   # Schroeder T20 per octave band
        sos = signal.butter(3, [fc / np.sqrt(2), fc * np.sqrt(2)], "band", fs=FS, output="sos")
        edc = np.cumsum((signal.sosfilt(sos, h[0]) ** 2)[::-1])[::-1]
        edc_db = 10 * np.log10(edc / edc[0])
        i5, i25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
        bands.append(f"{fc} Hz {3 * (i25 - i5) / FS:.2f} s")
    corr = np.corrcoef(h[0, n0:], h[1, n0:])[0, 1]
    print(f"  T60 (T20, left): {', '.join(bands)}; L/R correlation {corr:+.3f}; pre-delay {predelay * 1000:.0f} ms")
    wavfile.write(path, FS, h.T.astype(np.float32))


def report(path: Path):
    x, fs = sf.read(path, always_2d=True)
    rms = np.sqrt(np.mean(x ** 2))
    print(f"  -> {path.relative_to(HERE.parent)}: {sf.info(path).subtype}, {x.shape[1]} ch, "
          f"{len(x) / fs:.3f} s, peak {db(np.abs(x).max()):+.1f} dBFS, RMS {db(rms):+.1f} dBFS, "
          f"{path.stat().st_size / 1024:.0f} KiB")


def main():
    (HERE / "audio").mkdir(exist_ok=True)
    (HERE / "ir").mkdir(exist_ok=True)
    jobs = [
        (HERE / "audio/guitar_di.wav", make_guitar, {}),
        (HERE / "audio/voice.wav", make_voice, {}),
        (HERE / "ir/cab_4x12.wav", make_cab, {}),
        (HERE / "ir/room.wav", make_reverb,
         dict(length=0.8, t60=0.45, predelay=0.004, n_early=8, early_span=0.025, build=0.008, seed=7)),
        (HERE / "ir/hall.wav", make_reverb,
         dict(length=2.5, t60=1.6, predelay=0.009, n_early=14, early_span=0.070, build=0.025, seed=11)),
    ]
    for path, fn, kw in jobs:
        print(path.name)
        if fn(path, **kw) is not False:
            report(path)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"assets/ total: {total / 2 ** 20:.2f} MiB")


if __name__ == "__main__":
    main()
