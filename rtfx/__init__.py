"""rtfx: real-time streaming audio effects in PyTorch (CPU or CUDA).

Quick start::

    import rtfx, torch
    chain = rtfx.load_preset("assets/presets/guitar_demo.json")
    chain.prepare(rtfx.ProcessSpec(samplerate=48000, blocksize=64, channels=2))
    y = chain.process(torch.zeros(2, 64))       # (channels, frames) float32, state carried
"""
from .chain import Chain
from .effect import Effect
from .effects import EFFECTS, FIR, IIR, Biquad, Convolution, Gain, Sos
from .params import Param
from .preset import PresetError, chain_from_preset, load_preset, preset_dict, save_preset
from .render import render
from .spec import ProcessSpec

__all__ = [
    "EFFECTS", "FIR", "IIR", "Biquad", "Chain", "Convolution", "Effect", "Gain", "Param",
    "PresetError", "ProcessSpec", "Sos", "chain_from_preset", "load_preset", "preset_dict",
    "render", "save_preset",
]
__version__ = "0.1.0"
