"""Typed configuration: dataclasses built from dicts, JSON files or `key=value` strings.

Every config in clipstudy is a dataclass with commented defaults. `from_dict` is the one way
in: an unknown key is an error that names the valid ones, and values are coerced to the
field's type so that command-line strings and JSON numbers both work.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad configuration: the message names the bad value and the valid choices."""


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(name, value, next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name}={value!r} is not valid; choose one of {list(args)}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}={value!r} is not a list; use comma-separated values or a JSON array")
        elem = args[0] if args else str
        return origin(_coerce(name, v, elem) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean (use true/false)")
    if hint in (int, float, str):
        try:
            if hint is int and not isinstance(value, bool):
                number = float(value)  # accepts "1e5" and "100_000"
                if number != int(number):
                    raise ValueError
                return int(number)
            return hint(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{name}={value!r} is not a valid {hint.__name__}") from None
    return value


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def from_dict(cls: type[T], values: dict[str, Any], base: T | None = None) -> T:
    """Build `cls` from `values` (over `base` or the defaults); unknown keys are errors."""
    valid = field_names(cls)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s) {unknown}; valid keys: {valid}")
    hints = typing.get_type_hints(cls)
    coerced = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    obj = dataclasses.replace(base, **coerced) if base is not None else cls(**coerced)
    check = getattr(obj, "check", None)
    if check is not None:
        check()
    return obj


EXAMPLE = '{"lr": 0.001, "samples": 65536}'  # a config file, as error messages show one


def load(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Defaults <- JSON file (optional) <- overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            loaded = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {str(path)!r} is not valid JSON: {e.msg} at line {e.lineno} "
                              f"column {e.colno}; it must hold one object of fields, e.g. {EXAMPLE}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {str(path)!r} is not UTF-8 text; it must hold one JSON object of "
                              f"fields, e.g. {EXAMPLE}") from None
        if not isinstance(loaded, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(loaded), "a number")
            raise ConfigError(f"config file {str(path)!r} holds {kind}, not a JSON object of fields, e.g. {EXAMPLE}")
        values.update(loaded)
    values.update(overrides or {})
    return from_dict(cls, values)


def to_dict(obj: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(obj).items()}


def field_help(cls: type) -> dict[str, str]:
    """The same-line comment of each field (`name: type = default  # help`), for --help."""
    helps = {}
    names = set(field_names(cls))
    for line in inspect.getsource(cls).splitlines():
        head, _, comment = line.partition("  # ")
        name = head.strip().split(":")[0]
        if name in names and comment:
            helps[name] = comment.strip()
    return helps
