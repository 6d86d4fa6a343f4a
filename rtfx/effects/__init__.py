"""The stage types a chain and a preset can hold, by preset ``type`` name."""
from .biquad import Biquad
from .convolution import FIR, Convolution
from .gain import Gain
from .iir import IIR
from .sos_effect import Sos, SosEffect

EFFECTS = {cls.type_name: cls for cls in (Gain, Biquad, IIR, Sos, FIR, Convolution)}

__all__ = ["EFFECTS", "Biquad", "Convolution", "FIR", "Gain", "IIR", "Sos", "SosEffect"]
