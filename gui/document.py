"""The rack's document: the chain being edited, as preset stages, and how edits reach the engine.

The document is plain data (preset stage dicts, ``file`` fields absolute), so undo/redo keeps
whole snapshots and an edit is the difference between two of them: parameter, mix and bypass
changes become live engine messages (ramped, click-free); anything else (an effect added,
removed, moved, rebuilt) is a whole-chain swap, prepared and crossfaded in by the engine.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import rtfx
from rtfx.preset import FORMAT, VERSION, PresetError, chain_from_preset

LIVE_FIELDS = ("mix", "bypass")


def param_names(stage: dict) -> tuple[str, ...]:
    """The declared parameter names of a stage's effect type (empty for unknown types)."""
    cls = rtfx.EFFECTS.get(stage.get("type"))
    return tuple(p.name for p in cls.params) if cls else ()


def structure(stage: dict) -> dict:
    """What building the stage's effect depends on: everything but parameters, mix, bypass."""
    live = set(param_names(stage)) | set(LIVE_FIELDS)
    return {k: v for k, v in stage.items() if k not in live}


def new_stage(type_name: str) -> dict:
    """A stage of ``type_name`` built from its ``example_args``, as a preset stage."""
    cls = rtfx.EFFECTS[type_name]
    return cls(**copy.deepcopy(cls.example_args)).to_stage()


def stage_value(stage: dict, name: str) -> float:
    """A parameter's value in a stage (its declared default when the stage omits it)."""
    if name in stage:
        return float(stage[name])
    cls = rtfx.EFFECTS.get(stage.get("type"))
    if name == "mix":  # a class may start below fully wet (reverbs, delays)
        return float(getattr(cls, "mix_default", 1.0))
    return next(p.default for p in cls.params if p.name == name)


def stage_title(stage: dict) -> str:
    """A short name for a slot: the type and its main construction choice."""
    kind = stage.get("type", "?")
    if kind == "chain":
        return f"chain ({len(stage.get('stages', []))} stages)"
    detail = stage.get("kind") or stage.get("btype") or stage.get("shape") or stage.get("mode")
    if "file" in stage:
        detail = Path(stage["file"]).stem
    return f"{kind} · {detail}" if isinstance(detail, str) else kind


class RackDocument:
    """A chain as a list of preset stages plus its name (``file`` paths absolute)."""

    def __init__(self, stages: list[dict] | None = None, name: str = "Untitled") -> None:
        self.stages = stages or []
        self.name = name

    @classmethod
    def from_file(cls, path: str | Path) -> "RackDocument":
        """Read a preset file; raises ``PresetError`` (nothing half-loaded)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as error:
            raise PresetError(f"{path}: cannot read preset ({error.strerror})") from None
        except json.JSONDecodeError as error:
            raise PresetError(f"{path}: bad JSON at line {error.lineno}: {error.msg}") from None
        try:
            chain_from_preset(data, path.parent)  # validates every stage
        except PresetError as error:
            raise PresetError(f"{path}: {error}") from None
        stages = copy.deepcopy(data["chain"])
        _absolute_files(stages, path.parent.resolve())
        return cls(stages, data.get("name", path.stem))

    def copy(self) -> "RackDocument":
        return RackDocument(copy.deepcopy(self.stages), self.name)

    def to_preset(self, base_dir: str | Path | None = None) -> dict:
        """The preset document; ``file`` paths relative to ``base_dir`` when given."""
        stages = copy.deepcopy(self.stages)
        if base_dir is not None:
            _relative_files(stages, Path(base_dir).resolve())
        return {"format": FORMAT, "version": VERSION, "name": self.name, "chain": stages}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.write_text(json.dumps(self.to_preset(path.parent), indent=2) + "\n")

    def check(self) -> None:
        """Raise ``PresetError`` if the chain cannot be built."""
        chain_from_preset(self.to_preset())

    def __eq__(self, other) -> bool:
        return isinstance(other, RackDocument) and self.stages == other.stages and self.name == other.name


def live_changes(old: RackDocument, new: RackDocument) -> list[tuple] | None:
    """Engine messages turning ``old`` into ``new`` live, or None if the chain must be rebuilt.

    Messages: ``("set", stage, name, value)`` and ``("bypass", stage, flag)``.
    """
    if len(old.stages) != len(new.stages):
        return None
    changes: list[tuple] = []
    for index, (a, b) in enumerate(zip(old.stages, new.stages)):
        if structure(a) != structure(b):
            return None
        for name in (*param_names(b), "mix"):
            if stage_value(a, name) != stage_value(b, name):
                changes.append(("set", index, name, stage_value(b, name)))
        if a.get("bypass", False) != b.get("bypass", False):
            changes.append(("bypass", index, b.get("bypass", False)))
    return changes


def _absolute_files(stages: list[dict], base_dir: Path) -> None:
    for stage in stages:
        if isinstance(stage.get("file"), str):
            stage["file"] = str((base_dir / stage["file"]).resolve())
        _absolute_files(stage.get("stages", []), base_dir)


def _relative_files(stages: list[dict], base_dir: Path) -> None:
    import os

    for stage in stages:
        if isinstance(stage.get("file"), str):
            stage["file"] = os.path.relpath(stage["file"], base_dir)
        _relative_files(stage.get("stages", []), base_dir)
