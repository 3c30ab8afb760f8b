"""Dotted ``key=value`` overrides applied to pydantic models (``--set model.g_ch=32``).

Values are parsed as YAML scalars/flow collections (``32`` -> int, ``true`` -> bool,
``[0.0, 0.9]`` -> list, ``null`` -> None, anything else -> str); the model validates them.
An unknown key is refused with the list of valid keys at that level.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Iterable, Literal, Mapping, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from augmentgan.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
_SCI_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _admits_bool(tp: Any) -> bool:
    """Whether a field's type takes true/false as such (bool, Any, a union or Literal holding one)."""
    if tp is bool or tp is Any:
        return True
    origin = get_origin(tp)
    if origin is Literal:
        return any(isinstance(a, bool) for a in get_args(tp))
    if origin is Annotated:
        return _admits_bool(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return any(_admits_bool(a) for a in get_args(tp))
    return False


class StrictModel(BaseModel):
    """Base for every configuration section: unknown keys are errors, assignments validate, and
    true/false is refused where a number or a word is meant (pydantic reads ``data.size: true`` as 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and not _admits_bool(field.annotation):
                raise ValueError(f"{str(value).lower()} is a yes/no value; this key takes a number or a name (see `augmentgan recipe schema`)")
        return value


def parse_value(text: str) -> Any:
    if text.strip() == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _SCI_FLOAT.fullmatch(value.strip()):
        # PyYAML follows YAML 1.1, where "1e-4" (no dot) is a string: users mean a number.
        return float(value)
    return value


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``; a pair without ``=`` is an error."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not of the form key=value (for example --set optim.lr_g=1e-4)")
        out[key] = parse_value(value)
    return out


def _known_keys(model_cls: type[BaseModel]) -> list[str]:
    return sorted(model_cls.model_fields)


def _set_path(data: dict[str, Any], model_cls: type[BaseModel], path: list[str], value: Any, full: str) -> None:
    key = path[0]
    if key not in model_cls.model_fields:
        raise ConfigError(f"unknown key {full!r}: {key!r} is not one of {_known_keys(model_cls)}")
    if len(path) == 1:
        data[key] = value
        return
    annotation = model_cls.model_fields[key].annotation
    sub_cls = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if sub_cls is None:
        raise ConfigError(f"unknown key {full!r}: {key!r} has no sub-keys")
    sub = data.get(key)
    if isinstance(sub, BaseModel):
        sub = sub.model_dump()
    if sub is None:
        sub = {}
    data[key] = sub
    _set_path(sub, sub_cls, path[1:], value, full)


def format_validation_error(err: ValidationError, where: str = "") -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(parts)


def apply_overrides(model: M, overrides: Mapping[str, Any] | Iterable[str], where: str = "--set", prefix: str = "") -> M:
    """Return a validated copy of ``model`` with dotted-path overrides applied (``prefix``: how the
    user spelled the keys' section, e.g. ``train.``, named in the unknown-key error)."""
    if not isinstance(overrides, Mapping):
        overrides = parse_pairs(overrides)
    data = model.model_dump()
    for dotted, value in overrides.items():
        _set_path(data, type(model), dotted.split("."), value, prefix + dotted)
    try:
        return type(model).model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None
