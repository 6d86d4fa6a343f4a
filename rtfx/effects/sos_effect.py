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

    Subclasses implement ``design_steps(values) -> (S, N, 6) float64 sos``: the design for S
    sets of parameter values at once (``values`` maps each parameter name to an ``(S,)``
    array). It may raise ``ValueError`` when called off the audio thread, e.g. in ``prepare``.
    The number of sections must not depend on ramped parameters. While a parameter ramps, a
    block is designed for every ``ramp_step`` frames in one call and filtered with the moving
    coefficients in one go (``SosFilter.process_ramp``). ``Chain`` may fuse consecutive SOS
    effects into one kernel; ``sections`` is what it reads.
    """

    #: Coefficients move every 4 frames while ramping: a resonant low-pass swept 300 Hz ->
    #: 5 kHz in 30 ms is then as smooth as the same sweep done sample by sample (8: 1.2x the
    #: largest sample step, 16: 1.6x; see tests/test_effects.py).
    ramp_step = 4
    ramp_values_step = ramp_step  # used in capture mode (normal mode: ``_process_ramp``)

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def design(self) -> np.ndarray:
        """Sections ``(N, 6)`` for the current parameter values."""
        return self.design_steps({name: np.array([self.value(name)]) for name in self._smoothed})[0]

    def _prepare(self, spec: ProcessSpec) -> None:
        self.sections = self.design()
        self._kernel = SosFilter(self.sections, spec.channels, spec.blocksize, spec.device)
        self._applied = self.sections

    def _update(self) -> None:
        if self.ramp_values is not None:  # a capture-mode ramp: ``_control`` designs the steps
            return
        sections = self.design()
        if not np.array_equal(sections, self.sections):  # unchanged: keep the built matrices
            self.sections = sections

    def _reset(self) -> None:
        self._kernel.reset()

    def _control(self, frames: int) -> None:
        if self.ramp_values is not None:  # capture mode, ramping
            steps = self.design_steps(self.ramp_values)
            self.sections = steps[-1]
            if self._kernel.can_ramp_block(frames, self.ramp_step):
                # The steps go into the block's one matrix (smooth, no extra kernel).
                self._kernel.ramp_block(steps, self.ramp_step)
                self._applied = self.sections
                return
        if self._applied is not self.sections:
            self._kernel.set_sos(self.sections)
            self._applied = self.sections
        self._kernel.before_block(frames)

    def _blends(self, frames: int) -> bool:
        return self._kernel.one_kernel(frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        blend = self.blend_ramp(x.shape[-1])
        if blend is not None:  # filter and blend: one kernel
            return self._kernel.process_one(x, blend=(x, blend))
        return self._kernel.process(x)

    def ramp_sections(self, frames: int) -> np.ndarray:
        """Advance the parameters through the next ``frames`` and design every step.

        Returns ``(S, N, 6)`` for S = ceil(frames / ramp_step); afterwards ``sections`` holds
        the last step's design. Audio thread only.
        """
        steps = self.design_steps(self.step_values(frames, self.ramp_step))
        self.sections = self._applied = steps[-1]
        return steps

    def _process_ramp(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.ramp_sections(x.shape[-1])
        self._advance_wet(x.shape[-1])
        return self._mix(x, self._kernel.process_ramp(x, steps, self.ramp_step))

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

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return np.broadcast_to(self._sos, (len(values["mix"]),) + self._sos.shape)

    def _preset_fields(self) -> dict:
        return {"sos": self._sos.tolist()}
