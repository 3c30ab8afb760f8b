"""Datasets: the in-memory type, readers and writers.

``load(spec, ...)`` reads a folder, HDF5, NPZ or built-in dataset into :class:`LabeledImages`;
``save(data, path, ...)`` writes HDF5 or an ImageFolder tree atomically; :class:`H5Writer`
streams samples into HDF5; :class:`H5ImageDataset` (imported lazily: it needs torch) trains
from an HDF5 file.
"""

from __future__ import annotations

from typing import Any

from augmentgan.data.builtin import BUILTINS, DIGITS_LT_COUNTS
from augmentgan.data.hdf5 import H5Writer, read_hdf5_attrs, read_hdf5_extra
from augmentgan.data.io import READERS, WRITERS, load, save
from augmentgan.data.summary import describe, summarize
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source

__all__ = [
    "BUILTINS",
    "DIGITS_LT_COUNTS",
    "H5ImageDataset",
    "H5Writer",
    "LabeledImages",
    "READERS",
    "SOURCE_NAMES",
    "Source",
    "WRITERS",
    "describe",
    "load",
    "read_hdf5_attrs",
    "read_hdf5_extra",
    "save",
    "summarize",
]


def __getattr__(name: str) -> Any:
    if name == "H5ImageDataset":
        from augmentgan.data.torch_dataset import H5ImageDataset

        return H5ImageDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
