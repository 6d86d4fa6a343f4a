"""The effect lifecycle: ``prepare(spec)``, ``process(block)``, ``reset()``.

Every effect declares its parameters, carries state from block to block, and has bypass and
a wet/dry mix. Subclasses implement three hooks:

- ``_prepare(spec)``: allocate everything (buffers, kernels) for ``spec``.
- ``_update()``: recompute coefficients from the current parameter values; called in
  ``prepare`` and, on the audio thread, at the start of any block in which a parameter moved.
  It must keep state (a coefficient change never resets a filter).
- ``_process(x)``: process one block ``x`` of shape ``(channels, frames)`` and return the wet
  block of the same shape. It must not modify ``x``; the returned tensor may be a view into the
  effect's own buffer, valid until the next call.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from .params import Param, Smoothed
from .spec import ProcessSpec

MIX = Param("mix", "", 0.0, 1.0, 1.0, doc="wet/dry balance: 0 = dry only, 1 = wet only")


class Effect:
    """Base class of every streaming effect (and of ``Chain``)."""

    type_name: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **values: float) -> None:
        self._smoothed = {p.name: Smoothed(p) for p in self.params + (MIX,)}
        self.bypass = False  # written by any thread, read by the audio thread once per block
        self.spec: ProcessSpec | None = None
        for name, value in values.items():
            self.set(name, value)

    # -- parameters (any thread) ---------------------------------------------------------
    def set(self, name: str, value: float) -> None:
        """Set a parameter's target; the audio thread ramps to it. Raises ``ValueError``."""
        smoothed = self._smoothed.get(name)
        if smoothed is None:
            known = ", ".join(self._smoothed)
            raise ValueError(f"{self.type_name}: unknown parameter {name!r} (known: {known})")
        smoothed.target = smoothed.param.check(value, self.type_name)

    def get(self, name: str) -> float:
        """The parameter's target value (what was last set)."""
        return self._smoothed[name].target

    def value(self, name: str) -> float:
        """The parameter's current (ramped) value, as the audio thread last used it."""
        return self._smoothed[name].current

    @property
    def values(self) -> dict[str, float]:
        """All parameter targets by name, ``mix`` included."""
        return {name: s.target for name, s in self._smoothed.items()}

    # -- lifecycle -----------------------------------------------------------------------
    def prepare(self, spec: ProcessSpec) -> "Effect":
        """Allocate for ``spec`` and jump every parameter to its target. Returns self."""
        self.spec = spec
        for smoothed in self._smoothed.values():
            smoothed.set_rate(spec.samplerate)
            smoothed.snap()
        self._mix_now = 0.0 if self.bypass else self.value("mix")
        self._ramp_steps = torch.arange(1, spec.blocksize + 1, device=spec.device, dtype=spec.dtype)
        self._ramp = torch.empty(spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._mixed = torch.empty(spec.channels, spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._prepare(spec)
        self._update()
        return self

    def reset(self) -> None:
        """Clear all state (filter memories, delay lines); parameters jump to their targets."""
        for smoothed in self._smoothed.values():
            smoothed.snap()
        self._mix_now = 0.0 if self.bypass else self.value("mix")
        self._update()
        self._reset()

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Process one block ``(channels, frames)``; state carries to the next call.

        Blocks longer than ``spec.blocksize`` are processed in pieces. Audio thread only.
        """
        if self.spec is None:
            raise RuntimeError(f"{self.type_name or type(self).__name__}: call prepare(spec) first")
        frames = x.shape[-1]
        if frames > self.spec.blocksize:
            return torch.cat([self.process(part) for part in x.split(self.spec.blocksize, -1)], -1)
        self.advance(frames)
        return self._mix(x, self._process(x))

    def advance(self, frames: int) -> None:
        """Move every parameter ``frames`` samples along its ramp; ``_update`` if one moved."""
        moved = False
        for name, smoothed in self._smoothed.items():
            if smoothed.advance(frames) and name != "mix":
                moved = True
        if moved:
            self._update()

    def _mix(self, dry: torch.Tensor, wet: torch.Tensor) -> torch.Tensor:
        """Blend dry and wet with a per-sample ramp from last block's mix to this block's."""
        start, end = self._mix_now, (0.0 if self.bypass else self.value("mix"))
        self._mix_now = end
        if start == end == 1.0:
            return wet
        if start == end == 0.0:
            return dry
        frames = dry.shape[-1]
        out = torch.sub(wet, dry, out=self._mixed[:, :frames])
        return out.mul_(self._linear_ramp(start, end, frames)).add_(dry)

    def _linear_ramp(self, start: float, end: float, frames: int) -> torch.Tensor:
        """``(frames,)`` values stepping linearly from just after ``start`` to ``end``.

        A view into a buffer shared by all ramps of this effect: use it before the next ramp.
        """
        ramp = torch.mul(self._ramp_steps[:frames], (end - start) / frames, out=self._ramp[:frames])
        return ramp.add_(start)

    # -- hooks ---------------------------------------------------------------------------
    def _prepare(self, spec: ProcessSpec) -> None:
        pass

    def _update(self) -> None:
        pass

    def _reset(self) -> None:
        pass

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- composition and presets ---------------------------------------------------------
    def __or__(self, other: "Effect") -> "Effect":
        from .chain import Chain

        return Chain(self, other)

    def to_preset(self) -> dict:
        """This stage as a preset dict (see ``rtfx.preset``)."""
        stage = {"type": self.type_name}
        stage.update(self._preset_fields())
        for name, smoothed in self._smoothed.items():
            if smoothed.target != smoothed.param.default:
                stage[name] = smoothed.target
        if self.bypass:
            stage["bypass"] = True
        return stage

    def _preset_fields(self) -> dict:
        """Non-parameter fields of this stage's preset (design type, taps, file...)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"
