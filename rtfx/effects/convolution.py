"""FIR filters and impulse-response convolution (cabinets, rooms) with zero added latency."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audiofile import load_impulse_response
from ..effect import Effect
from ..kernels.convolution import make_convolver
from ..kernels.fused_fir import FusedFIR
from ..params import Param
from ..spec import ProcessSpec
from .gain import GainRamp, db_to_linear


class Convolution(Effect):
    """Convolve with an impulse response: inline taps or a ``.wav``/``.npy`` file.

    The fastest exact kernel is picked for the length and device (direct FIR for short
    taps, partitioned FFT convolution for long ones). A mono IR is applied to every channel; a
    multi-channel IR must have one channel per stream channel.

    Args:
        taps: array-like ``(taps,)`` or ``(channels, taps)``, or None when ``file`` is given.
        file: path of an IR file (resampled to the stream's rate if it is a sound file).
        normalize: scale the IR to unit energy (per the loudest channel), as IR loaders do.
        gain_db: output gain (ramped).
    """

    type_name = "convolution"
    category = "cabinet"
    ramp_step = 0  # the gain ramps per sample (and a reverb's cuts in ``ramp_values`` steps)
    example_args = {"taps": [0.5, 0.25, -0.125, 0.0625, -0.03125]}
    params = (Param("gain_db", "dB", -60.0, 24.0, 0.0, doc="output gain"),)

    def __init__(self, taps=None, file: str | Path | None = None, normalize: bool = False, **values: float) -> None:
        if (taps is None) == (file is None):
            raise ValueError("give exactly one of taps or file")
        self.file = None if file is None else Path(file)
        self.normalize = normalize
        self._taps = None
        if taps is not None:
            self._taps = np.atleast_2d(np.asarray(taps, dtype=np.float64))
            if self._taps.ndim != 2 or self._taps.shape[-1] == 0 or not np.all(np.isfinite(self._taps)):
                raise ValueError("taps must be a non-empty finite 1-D or 2-D array of numbers")
        elif not self.file.is_file():
            raise ValueError(f"file {str(self.file)!r} does not exist")
        super().__init__(**values)

    def impulse_response(self, samplerate: float) -> np.ndarray:
        """The IR at ``samplerate`` as float64 ``(channels, taps)``, normalised if asked."""
        taps = self._taps if self._taps is not None else load_impulse_response(self.file, samplerate)
        if self.normalize:
            energy = np.sqrt(np.max(np.sum(taps**2, axis=-1)))
            taps = taps / energy if energy > 0 else taps
        return taps

    @property
    def tail_seconds(self) -> float:
        """The impulse response's length (known once prepared; 0 before)."""
        return getattr(self, "_ir_seconds", 0.0) + 0.1

    def _prepare(self, spec: ProcessSpec) -> None:
        taps = self.impulse_response(spec.samplerate)
        self._ir_seconds = taps.shape[-1] / spec.samplerate
        if taps.shape[0] not in (1, spec.channels):
            raise ValueError(
                f"the impulse response has {taps.shape[0]} channels; the stream has "
                f"{spec.channels} (use a mono IR or one channel per stream channel)"
            )
        self._kernel = make_convolver(taps, spec.channels, spec.blocksize, spec.device, spec.capture)
        self._gained = torch.empty(spec.channels, spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._gain = GainRamp(spec, db_to_linear(self.value("gain_db")))

    def _reset(self) -> None:
        self._kernel.reset()
        self._gain.snap(db_to_linear(self.value("gain_db")))

    def _control(self, frames: int) -> None:
        self._gain.move_to(db_to_linear(self.value("gain_db")), frames)
        self._kernel.before_block(frames)

    def _blends(self, frames: int) -> bool:
        return isinstance(self._kernel, FusedFIR)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        blend = self.blend_ramp(x.shape[-1])
        if blend is not None:  # FIR, gain and blend: one kernel
            return self._kernel.process(x, self._gain.factors(x.shape[-1]), (x, blend))
        return self._gain.apply(self._kernel.process(x), self._gained)

    def _preset_fields(self) -> dict:
        fields = {"file": str(self.file)} if self.file is not None else {"taps": self._taps.tolist()}
        if self.normalize:
            fields["normalize"] = True
        return fields


class FIR(Convolution):
    """An FIR filter: taps inline or from a file (same engine as ``Convolution``)."""

    type_name = "fir"
    category = "filter"
    example_args = {"taps": [0.1, 0.2, 0.4, 0.2, 0.1]}
