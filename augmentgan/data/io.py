"""``load`` and ``save``: dispatch on the spec / output format through registries."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from augmentgan.data.builtin import read_builtin
from augmentgan.data.folder import read_folder, write_folder
from augmentgan.data.hdf5 import check_compression, read_hdf5, write_hdf5
from augmentgan.data.images import Channels, check_channels, check_size, convert_channels, resize_all
from augmentgan.data.npz import read_npz
from augmentgan.data.types import LabeledImages, LabeledParts
from augmentgan.errors import ConfigError, DataError
from augmentgan.progress import ProgressCallback

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class LoadOptions:
    channels: Channels = "auto"
    size: int | None = None
    split: str = "train"
    keys: tuple[str, ...] | None = None
    skip_bad: bool = False
    workers: int | None = None
    callback: ProgressCallback | None = None


READERS: dict[str, Callable[[str, LoadOptions], LabeledImages]] = {
    "folder": lambda spec, o: read_folder(spec, channels=o.channels, size=o.size, skip_bad=o.skip_bad, workers=o.workers, callback=o.callback),
    "hdf5": lambda spec, o: read_hdf5(spec, keys=o.keys),
    "npz": lambda spec, o: read_npz(spec, keys=o.keys, split=o.split),
    "builtin": lambda spec, o: read_builtin(spec[len(BUILTIN_PREFIX):]),
}
SUFFIXES = {".h5": "hdf5", ".hdf5": "hdf5", ".npz": "npz"}
KEYED_READERS = frozenset({"hdf5", "npz"})


def reader_kind(spec: str | os.PathLike) -> str:
    """Which reader handles ``spec``: a folder, .h5/.hdf5, .npz or builtin:NAME."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        return "builtin"
    path = Path(text)
    if not path.exists():
        raise DataError(f"{path} does not exist; give a folder of class subfolders, an .h5/.hdf5 or .npz file, or builtin:digits")
    if path.is_dir():
        return "folder"
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown data format {path.suffix!r}; give a folder of class subfolders, an .h5/.hdf5 or .npz file, or builtin:NAME")
    return kind


def parse_keys(keys: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"images,labels[,class_names]"`` (or a sequence) to a tuple of 2 or 3 dataset keys."""
    if keys is None:
        return None
    parts = tuple(k.strip() for k in (keys.split(",") if isinstance(keys, str) else keys))
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(f"keys must be IMAGES,LABELS or IMAGES,LABELS,CLASS_NAMES (dataset or array names), got {keys!r}")
    return parts


def conform(data: LabeledImages, *, channels: Channels = "auto", size: int | None = None) -> LabeledImages:
    """Resize (center crop + Lanczos) and convert channels; returns ``data`` itself when nothing changes."""
    images = data.images if size is None else resize_all(data.images, size)
    images = convert_channels(images, channels)
    if images is data.images:
        return data
    return LabeledImages(images, data.labels, data.class_names, data.source, data.parent)


def load(
    spec: str | os.PathLike,
    *,
    channels: Channels | str = "auto",
    size: int | None = None,
    split: str = "train",
    keys: str | Sequence[str] | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
    callback: ProgressCallback | None = None,
) -> LabeledImages:
    """Load a labeled image dataset.

    spec: a folder (``root/<class>/*.png``), an ``.h5``/``.hdf5`` file (augmentgan layout or
    foreign with ``keys``), an ``.npz`` archive, or ``builtin:digits`` / ``builtin:digits-lt``.
    channels: "auto" (folders: 1 if every image is grayscale, else 3, or as augmentgan.json records;
    arrays: as stored), 1 or 3.
    size: center-crop to a square and resize to size x size; None keeps the size (a folder's
    images must then share one size).
    split: the ``x_<split>``/``y_<split>`` arrays of an NPZ archive.
    keys: "images,labels[,class_names]" dataset/array names for HDF5 and NPZ input.
    skip_bad: leave out unreadable images of a folder (with a warning) instead of failing.
    workers: decoding threads for folders (default a few more than the CPU count).
    callback: progress events (stage "load") while reading a folder.
    """
    options = LoadOptions(check_channels(channels), check_size(size), str(split), parse_keys(keys), bool(skip_bad), workers, callback)
    kind = reader_kind(spec)
    if options.keys is not None and kind not in KEYED_READERS:
        raise ConfigError(f"keys apply to HDF5 and NPZ files only, not to {spec} ({kind})")
    data = READERS[kind](str(spec), options)
    return conform(data, channels=options.channels, size=options.size)


WRITERS: dict[str, Callable[..., Path]] = {"h5": write_hdf5, "folder": write_folder}
H5_SUFFIXES = frozenset({".h5", ".hdf5"})


def output_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The writer for ``path``: ``format`` if given, else "h5" for .h5/.hdf5 and "folder" otherwise.

    Refused (ConfigError, before anything is written): an .npz output (NPZ is read only), and HDF5
    output to a path without an .h5/.hdf5 suffix, which no reader would take for HDF5."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        raise ConfigError(f"output {path}: NPZ is read only; write an .h5/.hdf5 file or a folder (e.g. {Path(path).with_suffix('.h5')})")
    if format is None:
        return "h5" if suffix in H5_SUFFIXES else "folder"
    value = "h5" if str(format).lower() in ("h5", "hdf5") else str(format).lower()
    if value not in WRITERS:
        raise ConfigError(f"output format must be one of {', '.join(WRITERS)}, got {format!r}")
    named = os.fspath(path)
    if value == "h5" and (suffix not in H5_SUFFIXES or named.endswith(("/", os.sep))):
        raise ConfigError(f"output {named}: HDF5 output needs an .h5 or .hdf5 suffix (the readers tell formats by it); name it {named.rstrip('/' + os.sep)}.h5, or write a folder")
    return value


def save(
    data: LabeledImages | LabeledParts,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    force: bool = False,
    compression: str | None = "gzip",
    seed: int | None = None,
    recipe_text: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    callback: ProgressCallback | None = None,
) -> Path:
    """Write ``data`` atomically as HDF5 or an ImageFolder tree; returns the final path.

    :class:`LabeledParts` are written as their concatenation, a batch of rows at a time.

    An existing output raises :class:`OutputExistsError` unless ``force``. ``compression``
    applies to HDF5 only. ``seed``, ``recipe_text`` and ``extra_attrs`` become HDF5 file
    attributes (folder: ``augmentgan.json``); ``extra`` per-sample arrays become ``extra/<name>``
    datasets (folder: extra manifest columns). ``callback`` reports folder writing (stage "write").
    """
    fmt = output_format(path, format)
    common: dict[str, Any] = dict(force=force, seed=seed, recipe_text=recipe_text, extra_attrs=extra_attrs, extra=extra)
    if fmt == "h5":
        return WRITERS[fmt](data, path, compression=check_compression(compression), **common)
    return WRITERS[fmt](data, path, callback=callback, **common)
