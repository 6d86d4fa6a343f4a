"""The processing contract every effect is prepared with (JUCE's ``ProcessSpec``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class ProcessSpec:
    """What an effect may expect from the blocks it will be given.

    Args:
        samplerate: sample rate in Hz.
        blocksize: the largest number of frames one ``process`` call receives.
        channels: number of audio channels; blocks have shape ``(channels, frames)``.
        device: torch device the signal lives on ("cpu", "cuda", ...).
        dtype: signal dtype; rtfx's signal path is float32.
        capture: every block must run the same kernels with the same arguments, so that one
            CUDA graph can replay them (see ``rtfx.graph``): mixes are always computed and
            parameters move once per block instead of every few frames.
    """

    samplerate: float
    blocksize: int
    channels: int
    device: torch.device = field(default=torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    capture: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", torch.device(self.device))
        if not self.samplerate > 0:
            raise ValueError(f"samplerate must be > 0 Hz, got {self.samplerate}")
        if int(self.blocksize) != self.blocksize or self.blocksize < 1:
            raise ValueError(f"blocksize must be a whole number of frames >= 1, got {self.blocksize}")
        if int(self.channels) != self.channels or self.channels < 1:
            raise ValueError(f"channels must be a whole number >= 1, got {self.channels}")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for, but no CUDA GPU is available")

    @property
    def nyquist(self) -> float:
        """Half the sample rate, in Hz."""
        return self.samplerate / 2
