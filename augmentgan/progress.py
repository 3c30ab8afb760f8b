"""Progress reporting: the library calls a callback, the CLI draws it.

A callback receives :class:`ProgressEvent` objects. ``total`` is ``None`` when unknown.
``info`` carries stage-specific numbers (losses during training, file names...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass
class ProgressEvent:
    stage: str
    done: int
    total: Optional[int] = None
    info: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


def report(callback: Optional[ProgressCallback], stage: str, done: int, total: Optional[int] = None, **info: Any) -> None:
    """Call ``callback`` if there is one; the library's only way to say how far it got."""
    if callback is not None:
        callback(ProgressEvent(stage, done, total, info))
