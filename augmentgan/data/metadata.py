"""File-level metadata shared by the writers (HDF5 attributes, ``augmentgan.json`` of a folder)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from augmentgan._version import __version__
from augmentgan.errors import OutputError

FORMAT_VERSION = 1
RESERVED_KEYS = frozenset({"format", "format_version", "augmentgan_version", "created", "seed", "recipe", "class_names", "channels", "extra_dtypes"})


def plain(value: Any) -> Any:
    """numpy scalars/arrays to Python values (for JSON and for reading attributes back)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def output_metadata(
    format_name: str, *, seed: int | None = None, recipe_text: str | None = None, extra_attrs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """format, format_version, augmentgan_version, created (ISO-8601 UTC), seed and recipe when
    given, then ``extra_attrs`` (which may not reuse those names)."""
    clash = RESERVED_KEYS.intersection(extra_attrs or {})
    if clash:
        raise OutputError(f"extra attributes {sorted(clash)} would overwrite reserved metadata; rename them")
    meta: dict[str, Any] = {
        "format": format_name,
        "format_version": FORMAT_VERSION,
        "augmentgan_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if seed is not None:
        meta["seed"] = int(seed)
    if recipe_text is not None:
        meta["recipe"] = str(recipe_text)
    meta.update({str(k): plain(v) for k, v in (extra_attrs or {}).items()})
    return meta
