"""Classic IIR designs (Butterworth, Chebyshev I/II, elliptic, Bessel) as a streaming effect."""
from __future__ import annotations

import numpy as np

from ..design import BAND_TYPES, FAMILIES, check_frequency, design_iir
from ..zpk_design import IIRDesigner
from ..params import Param
from ..spec import ProcessSpec
from .sos_effect import SosEffect


class IIR(SosEffect):
    """A ``scipy.signal`` design of any order, run as second-order sections.

    Args:
        family: butter, cheby1, cheby2, ellip, bessel.
        btype: lowpass, highpass, bandpass, bandstop.
        order: filter order (fixed for the effect's life: it sets the state size).
        ripple_db: pass-band ripple (cheby1, ellip); attenuation_db: stop-band (cheby2, ellip).
        cutoff_hz, high_hz: parameters (ramped); ``high_hz`` is the upper edge of band types.
    """

    type_name = "iir"
    category = "filter"
    params = (
        Param("cutoff_hz", "Hz", 10.0, 96000.0, 1000.0, scale="log", doc="cutoff (lower band edge)"),
        Param("high_hz", "Hz", 10.0, 96000.0, 4000.0, scale="log", doc="upper band edge (band types)"),
    )

    def __init__(
        self,
        family: str = "butter",
        btype: str = "lowpass",
        order: int = 4,
        ripple_db: float = 1.0,
        attenuation_db: float = 60.0,
        **values: float,
    ) -> None:
        self.family, self.btype, self.order = family, btype, order
        self.ripple_db, self.attenuation_db = ripple_db, attenuation_db
        super().__init__(**values)
        # Check everything that does not depend on the sample rate now, with a nominal rate.
        design_iir(family, btype, order, 1000.0, 48000.0, 2000.0, ripple_db, attenuation_db)
        self._designer = IIRDesigner(family, btype, order, ripple_db, attenuation_db)

    def set(self, name: str, value: float) -> None:
        if name in ("cutoff_hz", "high_hz") and self.spec is not None:
            check_frequency(name, value, self.spec.samplerate)
        super().set(name, value)

    def _prepare(self, spec: ProcessSpec) -> None:
        band = self.btype in ("bandpass", "bandstop")
        design_iir(
            self.family, self.btype, self.order, self.get("cutoff_hz"), spec.samplerate,
            self.get("high_hz") if band else None, self.ripple_db, self.attenuation_db,
        )  # checks the edges against this rate
        super()._prepare(spec)

    def design_steps(self, values: dict[str, np.ndarray]) -> np.ndarray:
        band = self.btype in ("bandpass", "bandstop")
        return self._designer.sections(self.spec.samplerate, values["cutoff_hz"], values["high_hz"] if band else None)

    def _preset_fields(self) -> dict:
        fields = {"family": self.family, "btype": self.btype, "order": self.order}
        if self.family in ("cheby1", "ellip"):
            fields["ripple_db"] = self.ripple_db
        if self.family in ("cheby2", "ellip"):
            fields["attenuation_db"] = self.attenuation_db
        return fields
