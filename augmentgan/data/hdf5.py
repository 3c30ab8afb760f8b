"""HDF5: augmentgan's own layout (read, write, stream) and foreign files with given keys.

Layout (format version 1), N samples of H x W x C, K classes:

=============  ==========================  ==============================================
dataset        shape, dtype                notes
=============  ==========================  ==============================================
images         (N, H, W, C) uint8          chunks of one image, optional gzip (level 4) / lzf
labels         (N,) int64                  class index in 0..K-1
source         (N,) enum uint8             real=0, classical=1, smote=2, gan=3, copy=4, latent-smote=5
parent         (N,) int64                  index of the real sample it came from, -1 if none
class_names    (K,) UTF-8 variable string  class index -> name
extra/<name>   (N,) any numeric or string  optional per-sample datasets (e.g. truncation)
=============  ==========================  ==============================================

File attributes: ``format`` = "augmentgan-hdf5", ``format_version`` = 1 (int),
``augmentgan_version`` (str), ``created`` (ISO-8601 UTC str), ``seed`` (int, only when
given), ``recipe`` (the resolved recipe text, only when given), plus any ``extra_attrs``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from augmentgan.data.arrays import KEYS_VALUE, decode_names, labeled_from_arrays
from augmentgan.data.atomic import StagedOutput, write_failure
from augmentgan.data.metadata import FORMAT_VERSION, output_metadata, plain
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source, check_batch
from augmentgan.errors import ConfigError, DataError, Flag, OutputError

FORMAT_NAME = "augmentgan-hdf5"
EXTRA_GROUP = "extra"
SOURCE_DTYPE = h5py.enum_dtype({name: s.value for name, s in zip(SOURCE_NAMES, Source)}, basetype="u1")
COMPRESSIONS: dict[str | None, dict[str, Any]] = {
    "gzip": {"compression": "gzip", "compression_opts": 4},
    "lzf": {"compression": "lzf"},
    None: {},
}
_VECTOR_CHUNK = 4096


def check_compression(compression: str | None) -> str | None:
    """Normalise a compression option: "gzip", "lzf" or None ("none" accepted)."""
    value = None if compression is None or str(compression).lower() == "none" else str(compression).lower()
    if value not in COMPRESSIONS:
        raise ConfigError(f"compression must be gzip, lzf or none, got {compression!r}")
    return value


class H5Writer:
    """Stream samples into an augmentgan HDF5 file with flat memory.

    ``with H5Writer(path, class_names=..., image_shape=(H, W, C)) as w: w.append(images, labels)``.
    The file is written under a temporary name and renamed into place by :meth:`close`
    (called on a clean ``with`` exit); any exception inside the block deletes it instead.
    ``extra_dtypes`` declares extra per-sample datasets (``{"truncation": "f4", "note": str}``);
    every :meth:`append` must then pass one 1-D array per name in ``extra``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        class_names: Sequence[str],
        image_shape: tuple[int, int, int],
        force: bool = False,
        compression: str | None = "gzip",
        seed: int | None = None,
        recipe_text: str | None = None,
        extra_attrs: Mapping[str, Any] | None = None,
        extra_dtypes: Mapping[str, Any] | None = None,
    ) -> None:
        filters = COMPRESSIONS[check_compression(compression)]
        self.class_names = tuple(str(c) for c in class_names)
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise OutputError(f"class names must be a non-empty list of unique names, got {list(self.class_names)}")
        h, w, c = (int(v) for v in image_shape)
        if c not in (1, 3) or h < 1 or w < 1:
            raise OutputError(f"image_shape must be (H, W, C) with C in {{1, 3}}, got {tuple(image_shape)}")
        self.image_shape = (h, w, c)
        attrs = output_metadata(FORMAT_NAME, seed=seed, recipe_text=recipe_text, extra_attrs=extra_attrs)
        extra_dtypes = dict(extra_dtypes or {})
        for name in extra_dtypes:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
                raise OutputError(f"extra dataset name {name!r} must be letters, digits, '_', '.' or '-'")
        self._extra_names = tuple(extra_dtypes)
        self.count = 0
        self._staged = StagedOutput(path, force=force)
        self.path = self._staged.path
        try:
            self._file = h5py.File(self._staged.tmp, "w")
            f = self._file
            f.create_dataset("images", (0, h, w, c), np.uint8, maxshape=(None, h, w, c), chunks=(1, h, w, c), **filters)
            for name, dtype in (("labels", np.int64), ("source", SOURCE_DTYPE), ("parent", np.int64)):
                f.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(_VECTOR_CHUNK,), **filters)
            f.create_dataset("class_names", data=list(self.class_names), dtype=h5py.string_dtype("utf-8"))
            group = f.create_group(EXTRA_GROUP)
            for name, dtype in extra_dtypes.items():
                dt = h5py.string_dtype("utf-8") if dtype is str else np.dtype(dtype)
                group.create_dataset(name, (0,), dt, maxshape=(None,), chunks=(_VECTOR_CHUNK,), **filters)
            for key, value in attrs.items():
                try:
                    f.attrs[key] = value
                except (TypeError, ValueError):
                    raise OutputError(f"extra attribute {key!r}: cannot store a {type(value).__name__} in HDF5; use a string, number or list of them") from None
        except OSError as err:
            self.abort()
            raise write_failure(self.path, err) from None
        except BaseException:
            self.abort()
            raise

    def append(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        source: np.ndarray | None = None,
        parent: np.ndarray | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append a batch: images (B, H, W, C) uint8, labels (B,), optional source/parent/extra."""
        images = np.asarray(images)
        b = images.shape[0] if images.ndim == 4 else -1
        if images.dtype != np.uint8 or images.shape[1:] != self.image_shape:
            raise DataError(f"append expects uint8 images of shape (B, {', '.join(map(str, self.image_shape))}), got {images.dtype} {images.shape}")
        labels, source, parent, extra = check_batch(
            b, labels, source, parent, extra, num_classes=len(self.class_names), extra_names=self._extra_names
        )
        start, end = self.count, self.count + b
        f = self._file
        for name, values in (("images", images), ("labels", labels.astype(np.int64)), ("source", source.astype(np.uint8)), ("parent", parent.astype(np.int64))):
            f[name].resize(end, axis=0)
            f[name][start:end] = values
        for name, values in extra.items():
            ds = f[EXTRA_GROUP][name]
            ds.resize(end, axis=0)
            ds[start:end] = values
        self.count = end

    def close(self) -> Path:
        """Flush, close and rename the file into place; returns the final path."""
        self._file.close()
        return self._staged.commit()

    def abort(self) -> None:
        """Close and delete the temporary file; nothing appears under the final name."""
        file = getattr(self, "_file", None)
        if file is not None and file.id.valid:
            file.close()
        self._staged.abort()

    def __enter__(self) -> "H5Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            if exc_type is None:
                self.close()
                return
        except OSError as err:  # the last flush on close
            exc = err
        self.abort()
        if isinstance(exc, OSError):  # a full disk or a vanished folder: say which output, not a traceback
            raise write_failure(self.path, exc) from None


def write_hdf5(
    data: LabeledImages,
    path: str | os.PathLike,
    *,
    force: bool = False,
    compression: str | None = "gzip",
    seed: int | None = None,
    recipe_text: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    batch: int = 1024,
) -> Path:
    """Write ``data`` in the augmentgan layout (atomically); ``extra`` adds per-sample datasets."""
    extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
    dtypes = {k: (str if v.dtype.kind in "USO" else v.dtype) for k, v in extra.items()}
    with H5Writer(
        path, class_names=data.class_names, image_shape=data.image_shape, force=force, compression=compression,
        seed=seed, recipe_text=recipe_text, extra_attrs=extra_attrs, extra_dtypes=dtypes,
    ) as writer:
        for start in range(0, len(data), batch):
            s = slice(start, start + batch)
            writer.append(data.images[s], data.labels[s], data.source[s], data.parent[s], {k: v[s] for k, v in extra.items()})
    return writer.path


# --- reading -------------------------------------------------------------------------------


def open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as err:
        reason = " ".join(str(err).split())
        raise DataError(f"{path} is not a readable HDF5 file ({reason}); check that it is complete and really HDF5") from None


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def require_dataset(f: h5py.File, key: str, path: Path, what: str) -> h5py.Dataset:
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        found = _datasets(f)
        shown = ", ".join(found[:20]) + (" ..." if len(found) > 20 else "")
        raise DataError(f"{path} has no {what} dataset {key!r} (datasets: {shown or 'none'})", Flag("keys", KEYS_VALUE, before="; "))
    return obj


def is_augmentgan_hdf5(f: h5py.File) -> bool:
    return f.attrs.get("format") == FORMAT_NAME


def _read_ours(f: h5py.File, path: Path) -> LabeledImages:
    version = int(f.attrs.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise DataError(f"{path} uses HDF5 format version {version}, newer than this augmentgan ({FORMAT_VERSION}); upgrade augmentgan")
    arrays = {key: require_dataset(f, key, path, key)[()] for key in ("images", "labels", "source", "parent", "class_names")}
    names = decode_names(arrays["class_names"], f"{path}:class_names")
    try:
        return LabeledImages(arrays["images"], arrays["labels"], names, arrays["source"], arrays["parent"])
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


def read_hdf5(path: str | os.PathLike, *, keys: Sequence[str] | None = None) -> LabeledImages:
    """Read an augmentgan HDF5 file, or a foreign one.

    ``keys`` = (images key, labels key[, class names key]) selects datasets of a foreign file
    (converted by :mod:`augmentgan.data.arrays`); the default is ("images", "labels"). A root
    ``class_names`` dataset is used for names unless a third key is given.
    """
    path = Path(path)
    with open_hdf5(path) as f:
        if keys is None and is_augmentgan_hdf5(f):
            return _read_ours(f, path)
        keys = list(keys or ("images", "labels"))
        if len(keys) == 2 and isinstance(f.get("class_names"), h5py.Dataset):
            keys.append("class_names")
        images = require_dataset(f, keys[0], path, "images")[()]
        labels = require_dataset(f, keys[1], path, "labels")[()]
        names = decode_names(require_dataset(f, keys[2], path, "class names")[()], f"{path}:{keys[2]}") if len(keys) > 2 else None
    return labeled_from_arrays(images, labels, f"{path}:{keys[0]}", names, labels_where=f"{path}:{keys[1]}")


def read_hdf5_index(path: str | os.PathLike) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, tuple[str, ...]] | None:
    """(image shape (H, W, C), labels, source, class names) of an augmentgan HDF5 file, without
    reading the images (for summaries of big files); None for a foreign file."""
    path = Path(path)
    with open_hdf5(path) as f:
        if not is_augmentgan_hdf5(f):
            return None
        images = require_dataset(f, "images", path, "images")
        shape = tuple(int(v) for v in images.shape[1:])
        count = int(images.shape[0]) if images.ndim else 0
        labels = require_dataset(f, "labels", path, "labels")[()].astype(np.int64)
        source = require_dataset(f, "source", path, "source")[()].astype(np.uint8)
        names = tuple(decode_names(require_dataset(f, "class_names", path, "class names")[()], f"{path}:class_names"))
    if labels.shape != (count,):
        raise DataError(f"{path}: {count} images but {labels.size} labels (datasets images and labels); the file is damaged, rewrite it")
    if labels.shape != source.shape or (labels.size and (labels.min() < 0 or labels.max() >= len(names))):
        raise DataError(f"{path}: labels do not match the class names or the source flags; the file is damaged, rewrite it")
    return shape, labels, source, names  # type: ignore[return-value]


def read_hdf5_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The file attributes of an HDF5 file as plain Python values."""
    with open_hdf5(Path(path)) as f:
        return {k: plain(v) for k, v in f.attrs.items()}


def read_hdf5_extra(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The extra per-sample datasets (``extra/<name>``) of an augmentgan HDF5 file."""
    with open_hdf5(Path(path)) as f:
        group = f.get(EXTRA_GROUP)
        if not isinstance(group, h5py.Group):
            return {}
        return {name: (ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]) for name, ds in group.items()}
