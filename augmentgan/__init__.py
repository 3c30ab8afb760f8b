"""augmentgan: dataset expansion with class-conditional GANs, classical augmentation and SMOTE.

The public API (README "Python API"): :func:`expand` runs a recipe end to end and returns an
:class:`ExpandResult`; :func:`expand_data` expands an in-memory :class:`LabeledImages` and returns
:class:`ExpandedData`; :class:`GANOverSampler` is the same expansion as an imbalanced-learn
sampler; :func:`load_recipe` validates a recipe; progress arrives as :class:`ProgressEvent`
objects; errors are :class:`AugmentganError` subclasses. The heavy names are imported on first
use (the pipeline pulls in torch, albumentations and imblearn), so ``import augmentgan`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from augmentgan._version import __version__
from augmentgan.errors import (
    AugmentganError,
    AugmentganWarning,
    CheckpointError,
    ConfigError,
    DataError,
    GenerationError,
    ImageArrayError,
    OutputError,
    OutputExistsError,
    TrainingError,
    TrainingInterrupted,
)
from augmentgan.progress import ProgressCallback, ProgressEvent

if TYPE_CHECKING:
    from augmentgan.data.io import load, save
    from augmentgan.data.torch_dataset import H5ImageDataset
    from augmentgan.data.types import LabeledImages, Source
    from augmentgan.pipeline import ExpandedData, ExpandResult, expand, expand_data
    from augmentgan.recipe import Recipe, load_recipe
    from augmentgan.sampler import GANOverSampler

__all__ = [
    "__version__",
    # running an expansion
    "expand",
    "expand_data",
    "ExpandResult",
    "ExpandedData",
    "GANOverSampler",
    "Recipe",
    "load_recipe",
    # data
    "LabeledImages",
    "Source",
    "load",
    "save",
    "H5ImageDataset",
    # progress
    "ProgressEvent",
    "ProgressCallback",
    # errors and warnings
    "AugmentganError",
    "DataError",
    "ImageArrayError",
    "ConfigError",
    "OutputError",
    "OutputExistsError",
    "TrainingError",
    "CheckpointError",
    "TrainingInterrupted",
    "GenerationError",
    "AugmentganWarning",
]

_LAZY = {
    "expand": "augmentgan.pipeline",
    "expand_data": "augmentgan.pipeline",
    "ExpandResult": "augmentgan.pipeline",
    "ExpandedData": "augmentgan.pipeline",
    "GANOverSampler": "augmentgan.sampler",
    "Recipe": "augmentgan.recipe",
    "load_recipe": "augmentgan.recipe",
    "LabeledImages": "augmentgan.data.types",
    "Source": "augmentgan.data.types",
    "load": "augmentgan.data.io",
    "save": "augmentgan.data.io",
    "H5ImageDataset": "augmentgan.data.torch_dataset",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
