"""Reading and writing audio files; layout ``(channels, frames)`` float32 inside rtfx."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.signal
import soundfile


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a sound file as float32 ``(channels, frames)`` and its sample rate in Hz.

    Raises ``ValueError`` with the path when the file is missing or not audio.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        data, samplerate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"{path}: not a readable audio file ({error})") from None
    return np.ascontiguousarray(data.T), int(samplerate)


def write_audio(path: str | Path, audio: np.ndarray, samplerate: int) -> None:
    """Write float32 ``(channels, frames)`` as a 32-bit float WAV (or the suffix's format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "FLOAT" if path.suffix.lower() in (".wav", ".w64", ".aiff", ".aif") else None
    soundfile.write(str(path), np.asarray(audio, dtype=np.float32).T, samplerate, subtype=subtype)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling of ``(channels, frames)`` between integer rates (Kaiser window)."""
    if from_rate == to_rate:
        return audio
    g = np.gcd(int(from_rate), int(to_rate))
    return scipy.signal.resample_poly(audio, to_rate // g, from_rate // g, axis=-1)


def load_impulse_response(path: str | Path, samplerate: float) -> np.ndarray:
    """An impulse response from a ``.wav`` (or any sound file) or ``.npy`` file.

    Returns float64 ``(channels, taps)``. A sound file at another sample rate is resampled to
    ``samplerate``; a ``.npy`` file holds taps at the stream's rate (1-D or 2-D).
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
        try:
            taps = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable .npy array ({error})") from None
        taps = np.atleast_2d(np.asarray(taps, dtype=np.float64))
    else:
        audio, rate = read_audio(path)
        taps = resample(audio.astype(np.float64), rate, int(round(samplerate)))
    if taps.ndim != 2 or taps.shape[-1] == 0:
        raise ValueError(f"{path}: expected 1-D taps or (channels, taps), got shape {taps.shape}")
    if not np.all(np.isfinite(taps)):
        raise ValueError(f"{path}: holds NaN or Inf")
    return taps
