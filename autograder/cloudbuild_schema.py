"""The project's own check of a Cloud Build config: what `gcloud builds submit` refuses offline.

gcloud decodes a config into the Cloud Build API's `Build` message (apitools)
before it asks for credentials: unknown fields (`.steps[0].foo: unused`), values
of the wrong type, enum values that do not exist and malformed base64 are
refused, snake_case keys are accepted as their camelCase names, a single value
is accepted where a list is expected; then it refuses a config with no steps, a
`source`, or a substitution key that is not `_UPPER_CASE`. This module applies
the same rules to the safely loaded YAML (safe_yaml.py), with the message
definitions vendored in data/cloudbuild_build.json (generated from gcloud's own
messages by tools/gcloud_reference.py), so a config gets the same verdict with
or without gcloud installed.

    problem = cloudbuild_schema.check(data)   # None, or "`.steps[0].foo`: unused"
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().with_name("data") / "cloudbuild_build.json"
# Keys whose values are maps of the user's own names (never converted to camelCase).
_USER_KEYS = ("secretEnv", "secret_env", "substitutions", "envMap", "env_map")
_SUBSTITUTION_KEY = re.compile(r"^_[A-Z0-9_]+$")


@cache
def _messages() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))["messages"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _to_camel(value, skip: bool = False):
    """gcloud's snake_case -> camelCase conversion of keys, user maps left alone."""
    if isinstance(value, dict):
        return {
            (key if skip or not isinstance(key, str) else _camel(key)): _to_camel(
                item, isinstance(key, str) and key in _USER_KEYS
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_to_camel(item) for item in value]
    return value


def _is_map(fields: dict) -> bool:
    return list(fields) == ["additionalProperties"]


def _type_name(value) -> str:
    return {str: "a string", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _scalar(spec: dict, value, where: str) -> str | None:
    kind = spec["kind"]
    if kind == "string":
        ok = isinstance(value, str)
        expected = "a string (quote it)"
    elif kind == "bool":
        ok = isinstance(value, bool)
        expected = "true or false"
    elif kind == "int":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None
        )
        expected = "a whole number"
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        expected = "a number"
    elif kind == "bytes":
        ok = isinstance(value, str) and _base64(value)
        expected = "base64-encoded data"
    elif kind == "enum":
        ok = isinstance(value, str) and value in spec["values"]
        expected = "one of " + ", ".join(spec["values"])
    else:
        return None
    if ok:
        return None
    return f"`{where}`: expected {expected}, found {_type_name(value)} ({str(value)[:60]})"


def _base64(text: str) -> bool:
    try:
        base64.b64decode(text)
    except (binascii.Error, ValueError):
        return False
    return True


def _value(spec: dict, value, where: str) -> str | None:
    if value is None:
        return None  # an empty YAML value leaves the field unset
    if spec["repeated"]:
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            problem = _single(spec, item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    return _single(spec, value, where)


def _single(spec: dict, value, where: str) -> str | None:
    if spec["kind"] != "message":
        return _scalar(spec, value, where)
    fields = _messages()[spec["message"]]
    if not isinstance(value, dict):
        return f"`{where}`: expected a mapping (key: value lines), found {_type_name(value)}"
    if _is_map(fields):
        entry = _messages()[fields["additionalProperties"]["message"]]["value"]
        for key, item in value.items():
            problem = _value(entry, item, f"{where}.{key}")
            if problem:
                return problem
        return None
    return _message(spec["message"], value, where)


def _message(name: str, data: dict, where: str) -> str | None:
    fields = _messages()[name]
    for key, item in data.items():
        spec = fields.get(key) if isinstance(key, str) else None
        if spec is None:
            return f"`{where}.{key}`: unused (not a field of Cloud Build's {name})"
        problem = _value(spec, item, f"{where}.{key}")
        if problem:
            return problem
    return None


def check(data) -> str | None:
    """What gcloud would refuse in a config already loaded from YAML; None when it accepts it."""
    if not isinstance(data, dict):
        return "the config could not be parsed as a dictionary (a YAML mapping with `steps:`)"
    build = _to_camel(data)
    problem = _message("Build", build, "")
    if problem:
        return problem
    for key in build.get("substitutions") or {}:
        if not _SUBSTITUTION_KEY.match(str(key)):
            return (
                f"substitution key {key} does not respect format {_SUBSTITUTION_KEY.pattern} "
                "(user-defined substitutions start with _ and use capitals, digits and _)"
            )
    if build.get("source"):
        return "config cannot specify source (gcloud builds submit uploads it)"
    if not build.get("steps"):
        return "config must list at least one step"
    return None
