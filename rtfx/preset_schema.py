"""JSON Schema of the preset format, generated from the effects' declarations.

``python -m rtfx.preset_schema`` rewrites ``rtfx/preset.schema.json``; a test checks that the
committed file is current, so the schema can never drift from the code.
"""
from __future__ import annotations

import json
from pathlib import Path

from .effects import EFFECTS
from .preset import FORMAT, VERSION, construction_fields

SCHEMA_PATH = Path(__file__).with_name("preset.schema.json")

# JSON types of the construction fields (the declared parameters are all numbers).
FIELD_SCHEMAS = {
    "kind": {"type": "string"},
    "family": {"type": "string", "enum": ["butter", "cheby1", "cheby2", "ellip", "bessel"]},
    "btype": {"type": "string", "enum": ["lowpass", "highpass", "bandpass", "bandstop"]},
    "order": {"type": "integer", "minimum": 1, "maximum": 64},
    "ripple_db": {"type": "number", "exclusiveMinimum": 0},
    "attenuation_db": {"type": "number", "exclusiveMinimum": 0},
    "bandwidth_oct": {"type": "number", "exclusiveMinimum": 0},
    "sos": {"type": "array", "minItems": 1, "items": {"type": "array", "items": {"type": "number"}, "minItems": 6, "maxItems": 6}},
    "taps": {"type": "array", "minItems": 1, "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]}},
    "file": {"type": "string", "description": "path relative to the preset's folder (.wav, .flac, .npy)"},
    "normalize": {"type": "boolean"},
}


def _stage_schema(type_name: str, cls) -> dict:
    properties = {
        "type": {"const": type_name},
        "bypass": {"type": "boolean"},
        "mix": {"type": "number", "minimum": 0, "maximum": 1, "default": cls.mix_default},
    }
    for field in construction_fields(cls):
        properties[field] = cls.fields.get(field) or FIELD_SCHEMAS[field]
    for param in cls.params:
        properties[param.name] = {
            "type": "number", "minimum": param.minimum, "maximum": param.maximum,
            "default": param.default, "description": f"{param.doc} ({param.unit or 'no unit'}, {param.scale})",
        }
    schema = {"type": "object", "properties": properties, "required": ["type"], "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().splitlines()[0]
    return schema


def build_schema() -> dict:
    """The preset JSON Schema (draft 2020-12)."""
    stages = {name: _stage_schema(name, cls) for name, cls in EFFECTS.items()}
    stages["chain"] = {
        "type": "object",
        "properties": {
            "type": {"const": "chain"}, "bypass": {"type": "boolean"},
            "mix": {"type": "number", "minimum": 0, "maximum": 1},
            "stages": {"type": "array", "items": {"$ref": "#/$defs/stage"}},
        },
        "required": ["type", "stages"],
        "additionalProperties": False,
    }
    defs = {f"stage_{name}": schema for name, schema in stages.items()}
    defs["stage"] = {"oneOf": [{"$ref": f"#/$defs/stage_{name}"} for name in stages]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rtfx preset",
        "type": "object",
        "properties": {
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "chain": {"type": "array", "items": {"$ref": "#/$defs/stage"}},
        },
        "required": ["chain"],
        "additionalProperties": False,
        "$defs": defs,
    }


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(build_schema(), indent=2) + "\n")
    print(f"wrote {SCHEMA_PATH}")
