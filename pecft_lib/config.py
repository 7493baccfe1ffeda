"""Experiment configurations: YAML files with one section per profile, validated into dataclasses.

A file ``pecft_lib/configs/<name>.yaml`` holds ``quick:`` and ``paper:`` sections. :func:`load_config`
picks a section and builds the experiment's dataclass from it, refusing unknown keys and values of the
wrong type with one message that says where and what the valid keys are.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError, UnknownNameError
from .repro import PROFILES, current_profile

CONFIG_DIR = Path(__file__).parent / "configs"
T = TypeVar("T")


def available_configs() -> list[str]:
    """Names of the config files shipped with the library (``pecft_lib/configs/<name>.yaml``), sorted."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def _check_value(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_value(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {annotation}")
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(annotation)[:1] or (Any,)
        return [_check_value(v, item, f"{where}[{k}]") for k, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        _, item = typing.get_args(annotation) or (str, Any)
        return {k: _check_value(v, item, f"{where}.{k}") for k, v in value.items()}
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and (not isinstance(value, annotation) or
                                                  (annotation is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    missing = [name for name, f in fields.items() if name not in data and
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    return cls(**{key: _check_value(value, hints[key], f"{where}.{key}") for key, value in data.items()})


def load_config(name: str, cls: type[T], profile: str | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Read section ``profile`` (default: :func:`~pecft_lib.repro.current_profile`) of
    ``configs/<name>.yaml`` (or of the YAML file ``name`` when it ends with ``.yaml``), apply ``overrides``
    (dotted keys, e.g. ``{"train.epochs": 1}``) and validate it as ``cls``."""
    is_file = name.endswith((".yaml", ".yml"))
    path = Path(name) if is_file else CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        if is_file:
            raise ConfigError(f"config file {path} does not exist")
        raise UnknownNameError("config", name, available_configs())
    profile = profile or current_profile()
    sections = yaml.safe_load(path.read_text())
    if profile not in sections:
        raise UnknownNameError(f"profile of config {name!r}", profile, [p for p in PROFILES if p in sections])
    data = sections[profile]
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, key in enumerate(parents):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set {dotted}: {'.'.join(parents[:depth + 1])} is a "
                                  f"{type(node).__name__}, not a mapping")
        node[leaf] = value
    return from_dict(cls, data, f"{path.name}[{profile}]")
