"""The effect lifecycle: ``prepare(spec)``, ``process(block)``, ``reset()``.

Every effect declares its parameters, carries state from block to block, and has bypass and
a wet/dry mix. Subclasses implement three hooks:

- ``_prepare(spec)``: allocate everything (buffers, kernels) for ``spec``.
- ``_update()``: recompute coefficients from the current parameter values; called in
  ``prepare`` and, on the audio thread, at the start of any block in which a parameter moved.
  It must keep state (a coefficient change never resets a filter).
- ``_control(frames)``: the host side of the next block (read ramped values, write
  ``Control``s, move ring positions); called after ``_update`` and before ``_process``.
- ``_process(x)``: process one block ``x`` of shape ``(channels, frames)`` and return the wet
  block of the same shape. It must not modify ``x``; the returned tensor may be a view into the
  effect's own buffer, valid until the next call.

A block is ``before_block(frames)`` (host: ramps, ``_update``, ``_control``) then
``run_block(x)`` (kernels only). When ``spec.capture`` is set, ``run_block`` must issue the
same kernels with the same arguments on every block, so that a CUDA graph captured once can
replay it (``rtfx.graph``): everything that changes lives in device tensors. An effect that
cannot do that says why in ``capture_problem``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import torch

from .controls import LinearRamp
from .kernels import fused, fused_lines
from .kernels.fixed_delay import FixedDelay
from .params import Param, Smoothed
from .spec import ProcessSpec


def step_lengths(frames: int, step: int) -> list[int]:
    """Lengths of the ramp steps that cover ``frames``: ``step`` each, the last one shorter."""
    return [min(step, frames - start) for start in range(0, frames, step)]


def run_in_steps(process, x: torch.Tensor, step: int, out: torch.Tensor) -> torch.Tensor:
    """Apply ``process`` to consecutive ``step``-frame slices of ``x``, gathered in ``out``.

    ``out`` is a ``(channels, >= frames)`` buffer; returns the ``(channels, frames)`` view.
    """
    frames = x.shape[-1]
    for start in range(0, frames, step):
        stop = min(start + step, frames)
        out[:, start:stop].copy_(process(x[:, start:stop]))
    return out[:, :frames]


MIX = Param("mix", "", 0.0, 1.0, 1.0, doc="wet/dry balance: 0 = dry only, 1 = wet only")


#: Every effect type by its preset ``type`` name; filled as subclasses are defined.
REGISTRY: dict[str, type["Effect"]] = {}


class Effect:
    """Base class of every streaming effect (and of ``Chain``).

    A subclass with a ``type_name`` registers itself in ``REGISTRY`` (presets, the CLI and the
    GUI's palette are built from it). ``category`` groups it in the palette; ``fields`` gives
    the JSON Schema of each construction field (``kind``, ``shape``...) not already described
    in ``rtfx.preset_schema.FIELD_SCHEMAS``; ``example_args`` builds a typical instance.
    """

    type_name: ClassVar[str] = ""
    category: ClassVar[str] = ""
    fields: ClassVar[dict[str, dict]] = {}
    #: Constructor arguments of a typical instance (used by the GUI palette and the tests).
    example_args: ClassVar[dict] = {}
    #: The wet/dry balance a new instance starts with (reverbs and delays: below 1).
    mix_default: ClassVar[float] = 1.0
    params: ClassVar[tuple[Param, ...]] = ()
    #: Why this effect's ``run_block`` cannot be captured in a CUDA graph ("" when it can).
    capture_problem: ClassVar[str] = ""
    #: Parameters move once per block (per ``ramp_step`` sub-block outside capture mode),
    #: unless this is set: then a ramping block's values every this many frames are in
    #: ``ramp_values`` (see ``advance``), for ``_control`` to design finer steps.
    ramp_values_step: ClassVar[int] = 0
    ramp_values: dict | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type_name and cls.type_name != "chain":
            REGISTRY[cls.type_name] = cls
    #: While a parameter ramps, blocks are processed in steps of this many frames, each with
    #: coefficients updated (outside capture mode); 0: the effect ramps every parameter within
    #: a block itself (per-sample gains, ``ramp_values``), no steps needed.
    ramp_step: ClassVar[int] = 64
    #: Frames by which the wet signal lags the input (look-ahead, oversampling filters); a
    #: subclass sets it in ``__init__`` or ``_prepare``. The dry path is delayed to match, so mix and bypass
    #: stay aligned (a bypassed effect keeps its latency: toggling never jumps in time).
    latency: int = 0

    def __init__(self, **values: float) -> None:
        mix = MIX if self.mix_default == MIX.default else replace(MIX, default=self.mix_default)
        self._smoothed = {p.name: Smoothed(p) for p in self.params + (mix,)}
        self._moving = True  # a parameter may be off its target (False: all settled)
        self._wet = Smoothed(mix)  # the mix actually applied: ramps to 0 when bypassed
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
        smoothed.target = smoothed.param.check(value, self.type_name or type(self).__name__)
        self._moving = True  # after the store: the audio thread then sees the new target

    def get(self, name: str) -> float:
        """The parameter's target value (what was last set)."""
        return self._smoothed[name].target

    def value(self, name: str) -> float:
        """The parameter's current (ramped) value, as the audio thread last used it.

        For ``mix``: the wet amount actually applied (it ramps to 0 while bypassed).
        """
        return self._wet.current if name == "mix" else self._smoothed[name].current

    @property
    def values(self) -> dict[str, float]:
        """All parameter targets by name, ``mix`` included."""
        return {name: s.target for name, s in self._smoothed.items()}

    # -- lifecycle -----------------------------------------------------------------------
    def prepare(self, spec: ProcessSpec) -> "Effect":
        """Allocate for ``spec`` and jump every parameter to its target. Returns self."""
        self.spec = spec
        for smoothed in (*self._smoothed.values(), self._wet):
            smoothed.set_rate(spec.samplerate)
        self._snap()
        self._wet_ramp = LinearRamp(spec.blocksize, spec.device)
        self._mixed = torch.empty(spec.channels, spec.blocksize, device=spec.device, dtype=spec.dtype)
        self._stepped = torch.empty_like(self._mixed)
        self._prepare(spec)
        self._dry_delay = FixedDelay(spec.channels, self.latency, spec.blocksize, spec.device, spec.dtype) if self.latency else None
        self._fused_mix = self._dry_delay is not None and spec.capture and fused.available(spec.device)
        self._update()
        return self

    def reset(self) -> None:
        """Clear all state (filter memories, delay lines); parameters jump to their targets."""
        self._snap()
        self._update()
        self._reset()
        if self._dry_delay is not None:
            self._dry_delay.reset()

    def _snap(self) -> None:
        for smoothed in self._smoothed.values():
            smoothed.snap()
        self._wet.target = 0.0 if self.bypass else self.get("mix")
        self._wet.snap()
        self._wet_span = None  # (start, end) of the wet amount in the last block: none yet

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Process one block ``(channels, frames)``; state carries to the next call.

        Blocks longer than ``spec.blocksize`` are processed in pieces. Audio thread only.
        """
        if self.spec is None:
            raise RuntimeError(f"{self.type_name or type(self).__name__}: call prepare(spec) first")
        frames = x.shape[-1]
        if frames == 0:  # nothing to do: no state moves (scans need a last sample)
            return x
        if frames > self.spec.blocksize:
            return torch.cat([self.process(part).clone() for part in x.split(self.spec.blocksize, -1)], -1)
        if self.ramping and not self.spec.capture:
            return self._process_ramp(x)
        return self._process_step(x)

    def _process_ramp(self, x: torch.Tensor) -> torch.Tensor:
        """One block while a parameter ramps: steps of ``ramp_step`` frames, each ``_update``d."""
        if self.ramp_step and x.shape[-1] > self.ramp_step:
            return run_in_steps(self._process_step, x, self.ramp_step, self._stepped)
        return self._process_step(x)

    def _process_step(self, x: torch.Tensor) -> torch.Tensor:
        self.before_block(x.shape[-1])
        return self.run_block(x)

    def before_block(self, frames: int) -> None:
        """The host side of the next block of ``frames``: ramp the parameters (``_update`` if
        one moved), ``_control``, and the wet amount. With ``spec.capture``, parameters move
        once per block. Audio thread only."""
        self.advance(frames)
        self._control(frames)
        self._advance_wet(frames)

    def _advance_wet(self, frames: int) -> None:
        """Move the applied wet amount across the next block (to 0 while bypassed)."""
        wet, start = self._wet, self._wet.current
        wet.target = 0.0 if self.bypass else self._smoothed["mix"].target
        if start == wet.target and wet.settled and self._wet_span == (start, start):
            return  # steady: the ramp control already holds this value
        wet.advance(frames)
        self._wet_span = (start, wet.current)
        if self.spec.capture or start != wet.current or start not in (0.0, 1.0):
            self._wet_ramp.set(start, wet.current, frames)

    def run_block(self, x: torch.Tensor) -> torch.Tensor:
        """The kernels of one block ``(channels, frames)`` set up by ``before_block``."""
        if self.blend_ramp(x.shape[-1]) is not None:  # the fused kernel blends dry and wet
            return self._process(x)
        return self._mix(x, self._process(x))

    def blend_ramp(self, frames: int) -> torch.Tensor | None:
        """The wet amount of each of the next ``frames`` (a ``(frames,)`` device view) when
        ``_process`` blends the dry input in itself, else None (``_mix`` blends). Only in
        capture mode (where ``_mix`` would always launch its kernel), for an effect without
        latency whose fused kernel can (``_blends``)."""
        if self.spec.capture and not self.latency and self._blends(frames):
            return self._wet_ramp.tensor[:frames]
        return None

    @property
    def tail_seconds(self) -> float:
        """How long the output still depends on past input (the effect's memory), in seconds
        (valid once prepared): about 0.1 s for filters and dynamics; longer for delays,
        reverbs and long IRs."""
        return 0.1

    def capture_problems(self) -> list[str]:
        """Why this effect (or a stage inside it) cannot be captured in a CUDA graph."""
        name = self.type_name or type(self).__name__
        return [f"{name}: {self.capture_problem}"] if self.capture_problem else []

    @property
    def ramping(self) -> bool:
        """True while a parameter other than ``mix`` moves towards its target."""
        return self._moving and self._unsettled()

    def _unsettled(self) -> bool:
        return not all(s.settled for name, s in self._smoothed.items() if name != "mix")

    def advance(self, frames: int) -> None:
        """Move every parameter ``frames`` samples along its ramp; ``_update`` if one moved.

        ``mix`` is not ramped here: ``_mix`` ramps the wet amount actually applied. An effect
        with a ``ramp_values_step`` records, while it ramps, every parameter's value at the end
        of each step in ``ramp_values`` (else None), for ``_control``.
        """
        self.ramp_values = None
        if not self._moving:  # every parameter sits at its target
            return
        self._moving = False  # before the checks: a target set meanwhile sets it again
        if self.ramp_values_step and self._unsettled():
            self.ramp_values = self.step_values(frames, self.ramp_values_step)
            self._moving = True
            self._update()
            return
        moved = False
        for name, smoothed in self._smoothed.items():
            if name != "mix" and smoothed.advance(frames):
                moved = True
                self._moving = self._moving or not smoothed.settled
        if moved:
            self._update()

    def step_values(self, frames: int, step: int) -> dict[str, np.ndarray]:
        """Advance the parameters (not ``mix``) through ``frames`` in steps of ``step``;
        returns each one's value at the end of every step, ``{name: (S,) float64}``."""
        lengths = step_lengths(frames, step)
        values = {}
        for name, smoothed in self._smoothed.items():
            if name == "mix" or smoothed.settled:  # holds still: one value
                values[name] = np.full(len(lengths), smoothed.current)
                continue
            row = values[name] = np.empty(len(lengths))
            for i, length in enumerate(lengths):
                smoothed.advance(length)
                row[i] = smoothed.current
        return values

    @property
    def plain(self) -> bool:
        """True when the output is the wet signal alone: not bypassed, mix settled at 1."""
        return not self.bypass and self._wet.settled and self._wet.current == 1.0

    def _mix(self, dry: torch.Tensor, wet: torch.Tensor) -> torch.Tensor:
        """Blend dry and wet; the wet amount ramps (to 0 while bypassed) per sample."""
        frames = dry.shape[-1]
        if self._fused_mix:  # delay line and blend in one kernel
            return fused_lines.delayed_mix(self._dry_delay, dry, wet, self._wet_ramp.tensor[:frames], self._mixed[:, :frames])
        if self._dry_delay is not None:
            dry = self._dry_delay.process(dry)
        if not self.spec.capture:
            if self._wet_span == (1.0, 1.0):
                return wet
            if self._wet_span == (0.0, 0.0):
                return dry
        return torch.lerp(dry, wet, self._wet_ramp.tensor[:frames], out=self._mixed[:, :frames])

    # -- hooks ---------------------------------------------------------------------------
    def _prepare(self, spec: ProcessSpec) -> None:
        pass

    def _update(self) -> None:
        pass

    def _control(self, frames: int) -> None:
        pass

    def _reset(self) -> None:
        pass

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _blends(self, frames: int) -> bool:
        """Whether ``_process`` can blend a block of ``frames`` with ``blend_ramp`` itself."""
        return False

    # -- composition and presets ---------------------------------------------------------
    def __or__(self, other: "Effect") -> "Effect":
        from .chain import Chain

        return Chain(self, other)

    def to_stage(self) -> dict:
        """This effect as one stage of a preset's ``chain`` list (see ``rtfx.preset``)."""
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
