"""RBJ cookbook biquad: one second-order section with smoothly ramped frequency, Q and gain."""
from __future__ import annotations

import numpy as np

from ..design import RBJ_KINDS, biquad_sections, check_frequency, q_from_bandwidth
from ..params import Param
from ..spec import ProcessSpec
from .sos_effect import SosEffect


class Biquad(SosEffect):
    """One RBJ biquad (lowpass, highpass, bandpass, notch, allpass, peaking, low/high shelf).

    Args:
        kind: one of ``rtfx.design.RBJ_KINDS``.
        freq_hz, q, gain_db: parameters (ramped). ``bandwidth_oct`` may be given instead of
            ``q`` (converted at ``freq_hz`` with the default 48 kHz rate if unprepared).
    """

    type_name = "biquad"
    category = "filter"
    params = (
        Param("freq_hz", "Hz", 10.0, 96000.0, 1000.0, scale="log", doc="centre or corner frequency"),
        Param("q", "", 0.025, 100.0, 0.7071, scale="log", doc="quality factor"),
        Param("gain_db", "dB", -48.0, 48.0, 0.0, doc="peak or shelf gain (peaking, shelves)"),
    )

    def __init__(self, kind: str = "peaking", bandwidth_oct: float | None = None, **values: float) -> None:
        if kind not in RBJ_KINDS:
            raise ValueError(f"kind = {kind!r}; choose one of {', '.join(RBJ_KINDS)}")
        self.kind = kind
        super().__init__(**values)
        if bandwidth_oct is not None:
            self.set("q", q_from_bandwidth(bandwidth_oct, self.get("freq_hz"), 48000.0))

    def set(self, name: str, value: float) -> None:
        if name == "freq_hz" and self.spec is not None:
            check_frequency("freq_hz", value, self.spec.samplerate)
        super().set(name, value)

    def _prepare(self, spec: ProcessSpec) -> None:
        check_frequency("freq_hz", self.get("freq_hz"), spec.samplerate)
        super()._prepare(spec)

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        return biquad_sections(self.kind, values["freq_hz"], self.spec.samplerate, values["q"], values["gain_db"])

    def _preset_fields(self) -> dict:
        return {"kind": self.kind}
