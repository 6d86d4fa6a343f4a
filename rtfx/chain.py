"""``Chain``: effects in series, itself an effect (like ``torch.nn.Sequential``)."""
from __future__ import annotations

from collections.abc import Iterator

import torch

from .effect import Effect
from .fusion import fuse
from .spec import ProcessSpec


class Chain(Effect):
    """Effects applied one after another; ``a | b | c`` builds one.

    A chain behaves like a list (``len``, indexing, ``append``, ``insert``, ``pop``). After a
    structural edit call ``prepare`` again (the live engine prepares a new chain off the audio
    thread and swaps it in). With ``fuse=True`` runs of consecutive SOS effects (biquad, iir,
    sos) are processed as one cascade; results are the same.
    """

    type_name = "chain"

    def __init__(self, *stages: Effect, fuse: bool = True, **values: float) -> None:
        super().__init__(**values)
        for stage in stages:
            if not isinstance(stage, Effect):
                raise TypeError(f"Chain stages must be effects, got {type(stage).__name__}")
        self.stages = list(stages)
        self.fuse = fuse
        self.name = ""  # a preset's name, shown by the CLI and the GUI

    # -- list behaviour ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, index: int) -> Effect:
        return self.stages[index]

    def __iter__(self) -> Iterator[Effect]:
        return iter(self.stages)

    def append(self, stage: Effect) -> None:
        self.stages.append(stage)

    def insert(self, index: int, stage: Effect) -> None:
        self.stages.insert(index, stage)

    def pop(self, index: int = -1) -> Effect:
        return self.stages.pop(index)

    def __or__(self, other: Effect) -> "Chain":
        if self.bypass or self.values["mix"] != 1.0:
            return Chain(self, other)
        return Chain(*self.stages, other, fuse=self.fuse)

    # -- lifecycle -----------------------------------------------------------------------
    def _prepare(self, spec: ProcessSpec) -> None:
        for stage in self.stages:
            stage.prepare(spec)
        self.latency = sum(stage.latency for stage in self.stages)
        self._plan = fuse(self.stages, spec) if self.fuse and not spec.capture else list(self.stages)

    def _reset(self) -> None:
        for item in self._plan:
            item.reset()
        for stage in self.stages:
            stage.reset()

    def _control(self, frames: int) -> None:
        if self.spec.capture:  # else each stage's process runs its own host side
            for stage in self.stages:
                stage.before_block(frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        for item in self._plan:
            x = item.run_block(x) if self.spec.capture else item.process(x)
        return x

    @property
    def tail_seconds(self) -> float:
        """Stages in series: their memories add up."""
        return sum(stage.tail_seconds for stage in self.stages)

    def capture_problems(self) -> list[str]:
        return [problem for stage in self.stages for problem in stage.capture_problems()]

    def to_stage(self) -> dict:
        stage = super().to_stage()
        stage["stages"] = [s.to_stage() for s in self.stages]
        return stage

    def to_preset(self, base_dir=None) -> dict:
        """The whole chain as a preset document; ``file`` paths relative to ``base_dir``."""
        from .preset import preset_dict  # here: rtfx.preset imports Chain

        return preset_dict(self, base_dir)

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.stages)
        return f"Chain({inner})"
