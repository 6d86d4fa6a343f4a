"""Presets: a whole chain as JSON, and back.

Format (see README "Presets" and ``rtfx/preset.schema.json``)::

    {"format": "rtfx-preset", "version": 1, "name": "...",
     "chain": [{"type": "biquad", "kind": "highpass", "freq_hz": 80}, ...]}

Each stage has a ``type``, optional ``bypass`` and ``mix``, its declared parameters, and its
construction fields (``kind``, ``order``, ``sos``, ``taps``, ``file``...). A ``file`` is
relative to the preset's folder. A nested ``{"type": "chain", "stages": [...]}`` is a
sub-chain. Loading either returns a whole chain or raises ``PresetError`` naming the stage
and the field; nothing is half-loaded.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

from .chain import Chain
from .effect import Effect
from .effects import EFFECTS

FORMAT = "rtfx-preset"
VERSION = 1
COMMON_FIELDS = ("type", "bypass", "mix")


class PresetError(ValueError):
    """A preset that cannot be loaded; the message names the stage and the field."""


def construction_fields(cls: type[Effect]) -> list[str]:
    """The constructor arguments of an effect type other than its declared parameters."""
    signature = inspect.signature(cls.__init__)
    return [
        name for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def _without_owner(error: Exception, kind: str) -> str:
    """The message without the ``"<type>: "`` an effect puts first (the stage names it)."""
    message = str(error)
    return message.removeprefix(f"{kind}: ")


def _stage(data, where: str, base_dir: Path) -> Effect:
    if not isinstance(data, dict):
        raise PresetError(f"{where}: must be an object with a \"type\", got {type(data).__name__}")
    kind = data.get("type")
    if kind == "chain":
        stages = data.get("stages")
        if not isinstance(stages, list):
            raise PresetError(f"{where} (chain): field \"stages\" must be a list of stages")
        effect = Chain(*[_stage(s, f"{where}.{i}", base_dir) for i, s in enumerate(stages)])
        allowed = {"stages"}
    elif kind in EFFECTS:
        cls = EFFECTS[kind]
        allowed = set(construction_fields(cls)) | {p.name for p in cls.params}
        unknown = sorted(set(data) - allowed - set(COMMON_FIELDS))
        if unknown:
            known = ", ".join(sorted(allowed) + ["bypass", "mix"])
            raise PresetError(f"{where} ({kind}): unknown field {unknown[0]!r} (known: {known})")
        args = {k: v for k, v in data.items() if k not in COMMON_FIELDS}
        if isinstance(args.get("file"), str):
            args["file"] = base_dir / args["file"]
        try:
            effect = cls(**args)
        except (ValueError, TypeError) as error:
            raise PresetError(f"{where} ({kind}): {_without_owner(error, kind)}") from None
    else:
        known = ", ".join(["chain", *EFFECTS])
        raise PresetError(f"{where}: unknown type {kind!r} (known: {known})")
    try:
        if "mix" in data:
            effect.set("mix", data["mix"])
    except ValueError as error:
        raise PresetError(f"{where} ({kind}): {_without_owner(error, kind)}") from None
    bypass = data.get("bypass", False)
    if not isinstance(bypass, bool):
        raise PresetError(f"{where} ({kind}): field \"bypass\" must be true or false, got {bypass!r}")
    effect.bypass = bypass
    return effect


def chain_from_preset(data, base_dir: str | Path = ".") -> Chain:
    """Build a chain from a preset dict; ``file`` fields are relative to ``base_dir``."""
    if not isinstance(data, dict):
        raise PresetError("preset: must be a JSON object with a \"chain\" list")
    if data.get("format", FORMAT) != FORMAT:
        raise PresetError(f"preset: field \"format\" must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version", VERSION) != VERSION:
        raise PresetError(f"preset: field \"version\" {data.get('version')!r} is not supported (this is {VERSION})")
    stages = data.get("chain")
    if not isinstance(stages, list):
        raise PresetError("preset: field \"chain\" must be a list of stages")
    chain = Chain(*[_stage(s, f"stage {i}", Path(base_dir)) for i, s in enumerate(stages)])
    return chain


def load_preset(path: str | Path) -> Chain:
    """Load a preset file into a new (unprepared) ``Chain``. Raises ``PresetError``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise PresetError(f"{path}: cannot read preset ({error.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PresetError(f"{path}: bad JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    try:
        chain = chain_from_preset(data, path.parent)
    except PresetError as error:
        raise PresetError(f"{path}: {error}") from None
    chain.name = data.get("name", path.stem)
    return chain


def preset_dict(chain: Chain, base_dir: str | Path | None = None, name: str | None = None) -> dict:
    """The preset dict of ``chain``; ``file`` fields are made relative to ``base_dir``."""
    stages = chain.to_stage()["stages"]
    if base_dir is not None:
        _relative_files(stages, Path(base_dir))
    data = {"format": FORMAT, "version": VERSION}
    if name or getattr(chain, "name", None):
        data["name"] = name or chain.name
    data["chain"] = stages
    return data


def _relative_files(stages: list[dict], base_dir: Path) -> None:
    for stage in stages:
        if "file" in stage:
            stage["file"] = os.path.relpath(Path(stage["file"]).resolve(), base_dir.resolve())
        _relative_files(stage.get("stages", []), base_dir)


def save_preset(chain: Chain, path: str | Path, name: str | None = None) -> None:
    """Write ``chain`` as a preset file (paths relative to its folder)."""
    path = Path(path)
    data = preset_dict(chain, path.parent, name)
    path.write_text(json.dumps(data, indent=2) + "\n")
