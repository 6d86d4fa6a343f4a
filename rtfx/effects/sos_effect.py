"""Effects that are a cascade of second-order sections, and the raw ``sos`` stage."""
from __future__ import annotations

import numpy as np
import torch

from ..effect import Effect
from ..kernels.iir import SosFilter
from ..kernels.sos import check_sos
from ..spec import ProcessSpec


class SosEffect(Effect):
    """Base of every effect that is an SOS cascade (biquad, iir, sos).

    Subclasses implement ``design() -> (N, 6) float64 sos`` from the current parameter values
    (it may raise ``ValueError`` when called off the audio thread, e.g. in ``prepare``). The
    number of sections must not depend on ramped parameters. ``Chain`` may fuse consecutive
    SOS effects into one kernel; ``sections`` is what it reads.
    """

    def design(self) -> np.ndarray:
        raise NotImplementedError

    def _prepare(self, spec: ProcessSpec) -> None:
        self.sections = self.design()
        self._kernel = SosFilter(self.sections, spec.channels, spec.blocksize, spec.device)
        self._applied = self.sections

    def _update(self) -> None:
        sections = self.design()
        if not np.array_equal(sections, self.sections):  # unchanged: keep the built matrices
            self.sections = sections

    def _reset(self) -> None:
        self._kernel.reset()

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        if self._applied is not self.sections:
            self._kernel.set_sos(self.sections, rebalance=not self.ramping)
            self._applied = self.sections
        return self._kernel.process(x)

    @property
    def kernel(self) -> SosFilter:
        """The streaming kernel (its state is this effect's filter memory)."""
        return self._kernel


class Sos(SosEffect):
    """Raw second-order sections as ``scipy.signal`` writes them: rows ``[b0, b1, b2, 1, a1, a2]``.

    Args:
        sos: array-like ``(N, 6)``; validated (shape, finite, stable) at construction.
    """

    type_name = "sos"
    category = "filter"
    example_args = {"sos": [[0.0675, 0.1349, 0.0675, 1.0, -1.143, 0.4128]]}

    def __init__(self, sos, **values: float) -> None:
        self._sos = check_sos(sos)
        super().__init__(**values)

    def design(self) -> np.ndarray:
        return self._sos

    def _preset_fields(self) -> dict:
        return {"sos": self._sos.tolist()}
