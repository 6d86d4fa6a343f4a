"""The stage types a chain and a preset can hold, by preset ``type`` name.

Every module of this package is imported here, so an effect class defined in any of them
registers itself (``rtfx.effect.REGISTRY``); ``EFFECTS`` is that registry.
"""
import importlib
import pkgutil

from ..effect import REGISTRY
from .biquad import Biquad
from .convolution import FIR, Convolution
from .gain import Gain
from .iir import IIR
from .sos_effect import Sos, SosEffect

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

EFFECTS = REGISTRY

__all__ = ["EFFECTS", "Biquad", "Convolution", "FIR", "Gain", "IIR", "Sos", "SosEffect"]
