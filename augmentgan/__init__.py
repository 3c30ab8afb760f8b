"""augmentgan: dataset expansion with class-conditional GANs, classical augmentation and SMOTE."""

from typing import Any

from augmentgan._version import __version__
from augmentgan.errors import AugmentganError

__all__ = ["__version__", "AugmentganError", "expand"]


def __getattr__(name: str) -> Any:
    if name == "expand":  # imported on use: the pipeline pulls in torch, albumentations, imblearn
        from augmentgan.pipeline import expand

        return expand
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
