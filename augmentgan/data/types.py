"""The one in-memory dataset type: :class:`LabeledImages`."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from augmentgan.errors import DataError


class Source(enum.IntEnum):
    """Where a sample came from. The integer values are stored in HDF5 files: never renumber."""

    real = 0
    classical = 1
    smote = 2
    gan = 3
    copy = 4  # random oversampling: an exact copy of a real sample
    latent_smote = 5  # SMOTE between two real images' GAN latent codes, decoded by the generator
    pseudo = 6  # a real image labeled by a semi-supervised GAN's K+1 discriminator (augmentgan label), not by a person


SOURCE_NAMES: tuple[str, ...] = tuple(s.name.replace("_", "-") for s in Source)
"""What users see (HDF5 enum labels, manifest.csv, counts.csv, file names, plan.mix keys):
``latent-smote`` for :attr:`Source.latent_smote`; the other names are the enum's own."""


def source_value(name: str) -> int:
    """The stored value of a source name as users see it (``latent-smote``) or as the enum spells it."""
    key = str(name)
    if key in SOURCE_NAMES:
        return SOURCE_NAMES.index(key)
    return Source[key].value  # KeyError for an unknown name


def check_batch(
    b: int,
    labels: np.ndarray,
    source: Optional[np.ndarray],
    parent: Optional[np.ndarray],
    extra: Optional[Mapping[str, np.ndarray]],
    *,
    num_classes: int,
    extra_names: Iterable[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Validate one appended batch of a streaming writer; fill default source (real) and parent (-1)."""
    labels = np.asarray(labels)
    source = np.full(b, Source.real.value, np.uint8) if source is None else np.asarray(source)
    parent = np.full(b, -1, np.int64) if parent is None else np.asarray(parent)
    if labels.shape != (b,) or source.shape != (b,) or parent.shape != (b,):
        raise DataError(f"append needs one label, source and parent per image ({b})")
    if b and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"labels must be in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    if b and (source.min() < 0 or source.max() >= len(Source)):
        raise DataError(f"source values must be in 0..{len(Source) - 1} ({', '.join(SOURCE_NAMES)})")
    extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
    names = sorted(extra_names)
    if sorted(extra) != names:
        raise DataError(f"append needs extra arrays {names}, got {sorted(extra)}")
    for name, values in extra.items():
        if values.shape != (b,):
            raise DataError(f"extra array {name!r} must have shape ({b},), got {values.shape}")
    return labels, source, parent, extra


@dataclass(frozen=True, eq=False)
class LabeledImages:
    """Labeled uint8 images with per-sample provenance.

    images:      (N, H, W, C) uint8, C in {1, 3}
    labels:      (N,) int64, each in [0, len(class_names))
    class_names: one name per class index
    source:      (N,) uint8 values of :class:`Source`
    parent:      (N,) int64 index of the real sample a derived one came from, -1 if none

    ``parent`` indexes the *real* dataset the derived samples were made from (the dataset
    before expansion); it is kept as is by slicing and concatenation.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: np.ndarray = field(default=None)  # type: ignore[assignment]
    parent: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        labels = np.asarray(self.labels)
        if images.dtype != np.uint8:
            raise DataError(f"images must be uint8, got {images.dtype}; convert with augmentgan.data.arrays.images_from_array (floats in [0, 1] or [0, 255], 16-bit) or clip and cast")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(f"images must have shape (N, H, W, C) with C in {{1, 3}}, got {images.shape}")
        n = images.shape[0]
        if labels.ndim != 1 or labels.shape[0] != n:
            raise DataError(f"{labels.shape[0] if labels.ndim else 'scalar'} labels for {n} images: labels must be one integer per image")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
                raise DataError("labels must be whole numbers")
        labels = labels.astype(np.int64, copy=False)
        names = tuple(str(c) for c in self.class_names)
        if len(set(names)) != len(names):
            raise DataError(f"class names must be unique, got {list(names)}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(f"labels must be in [0, {len(names) - 1}] for {len(names)} classes, found {labels.min()}..{labels.max()}")
        source = np.zeros(n, np.uint8) if self.source is None else np.asarray(self.source)
        parent = np.full(n, -1, np.int64) if self.parent is None else np.asarray(self.parent)
        if source.shape != (n,) or parent.shape != (n,):
            raise DataError(f"source and parent must have one entry per image ({n})")
        if source.size and (source.min() < 0 or source.max() >= len(Source)):
            raise DataError(f"source values must be in 0..{len(Source) - 1} ({', '.join(SOURCE_NAMES)})")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "source", source.astype(np.uint8, copy=False))
        object.__setattr__(self, "parent", parent.astype(np.int64, copy=False))

    # --- basic properties -------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C)."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        return int(self.images.shape[-1])

    def class_counts(self) -> np.ndarray:
        """Number of samples per class index, length ``num_classes`` (zeros included)."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def source_counts(self) -> dict[str, int]:
        counts = np.bincount(self.source, minlength=len(Source))
        return {name: int(counts[i]) for i, name in enumerate(SOURCE_NAMES)}

    def counts_by_class_and_source(self) -> np.ndarray:
        """(num_classes, len(Source)) table of counts."""
        table = np.zeros((self.num_classes, len(Source)), np.int64)
        np.add.at(table, (self.labels, self.source), 1)
        return table

    # --- slicing and joining ----------------------------------------------------------
    def __getitem__(self, index) -> "LabeledImages":
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return LabeledImages(
            self.images[index], self.labels[index], self.class_names, self.source[index], self.parent[index]
        )

    def select_classes(self, classes: Sequence[int]) -> "LabeledImages":
        return self[np.isin(self.labels, np.asarray(classes))]

    def present_classes(self) -> "LabeledImages":
        """The same rows with only the classes they have images of, renumbered in order (itself when none is empty):
        what a classifier learns from a holdout or a validation set that lacks some classes."""
        present = np.flatnonzero(self.class_counts() > 0)
        if len(present) == self.num_classes:
            return self
        return LabeledImages(self.images, np.searchsorted(present, self.labels), tuple(self.class_names[c] for c in present), self.source, self.parent)

    @staticmethod
    def concatenate(parts: Iterable["LabeledImages"]) -> "LabeledImages":
        parts = list(parts)
        if not parts:
            raise DataError("nothing to concatenate")
        names = parts[0].class_names
        shape = parts[0].image_shape
        for p in parts[1:]:
            if p.class_names != names:
                raise DataError(f"cannot concatenate datasets with different classes: {list(names)} vs {list(p.class_names)}")
            if p.image_shape != shape:
                raise DataError(f"cannot concatenate images of shape {shape} and {p.image_shape}")
        return LabeledImages(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            names,
            np.concatenate([p.source for p in parts]),
            np.concatenate([p.parent for p in parts]),
        )

    def __add__(self, other: "LabeledImages") -> "LabeledImages":
        return LabeledImages.concatenate([self, other])

    # --- identity ---------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 hex digest of pixels, shape, labels and class names (not provenance).

        Two datasets with the same fingerprint train the same GAN; used as a cache key.
        """
        h = hashlib.sha256()
        h.update(b"augmentgan-labeledimages-v1")
        h.update(np.asarray(self.images.shape, np.int64).tobytes())
        h.update(np.ascontiguousarray(self.images).data)
        h.update(np.ascontiguousarray(self.labels.astype("<i8")).data)
        for name in self.class_names:
            b = name.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        return f"LabeledImages(n={len(self)}, size={h}x{w}x{c}, classes={self.num_classes}, counts={self.class_counts().tolist()})"


class StackedImages:
    """Image arrays one after another, indexed like one ``(N, H, W, C)`` array (an int, a slice, a
    boolean mask or row indices) without ever concatenating them: a lookup copies only the rows it
    returns. Read-only."""

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self._arrays = list(arrays)
        self.offsets = np.cumsum([0] + [len(a) for a in self._arrays])
        self.shape = (int(self.offsets[-1]), *self._arrays[0].shape[1:])
        self.dtype = self._arrays[0].dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):  # noqa: ANN001, ANN204
        if isinstance(index, (int, np.integer)):
            i = int(index) + (self.shape[0] if index < 0 else 0)
            k = int(np.searchsorted(self.offsets, i, side="right")) - 1
            return self._arrays[k][i - self.offsets[k]]
        rows = np.arange(self.shape[0])[index]
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        for k in np.unique(part):
            at = part == k
            out[at] = self._arrays[k][rows[at] - self.offsets[k]]
        return out


class LabeledParts:
    """Several :class:`LabeledImages` of the same classes read as their concatenation, without
    building it: what the writers (:func:`~augmentgan.data.io.save`) and the expansion report read
    (``images``, ``labels``, ``source``, ``parent``, counts, row selection). A selection that is
    exactly one part returns that part itself; :meth:`concatenate` builds the one array."""

    def __init__(self, parts: Iterable[LabeledImages]) -> None:
        self.parts = tuple(parts)
        if not self.parts:
            raise DataError("nothing to concatenate")
        self.class_names = self.parts[0].class_names
        for p in self.parts[1:]:
            if p.class_names != self.class_names or p.image_shape != self.parts[0].image_shape:
                raise DataError(f"parts differ in classes or image shape: {self.parts[0]!r} vs {p!r}")
        self.images = StackedImages([p.images for p in self.parts])
        # the rows without their pixels (a broadcast view holds no memory): counts and checks come from it
        self._index = LabeledImages(
            np.broadcast_to(np.zeros(1, np.uint8), (len(self.images), 1, 1, 1)),
            np.concatenate([p.labels for p in self.parts]), self.class_names,
            np.concatenate([p.source for p in self.parts]), np.concatenate([p.parent for p in self.parts]),
        )
        self.labels, self.source, self.parent = self._index.labels, self._index.source, self._index.parent

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.parts[0].image_shape

    def class_counts(self) -> np.ndarray:
        return self._index.class_counts()

    def source_counts(self) -> dict[str, int]:
        return self._index.source_counts()

    def counts_by_class_and_source(self) -> np.ndarray:
        return self._index.counts_by_class_and_source()

    def __getitem__(self, index) -> "LabeledImages | LabeledParts":  # noqa: ANN001
        """The selected rows; when they are whole parts (in order) those parts themselves, without a copy."""
        rows = np.arange(len(self))[[int(index)] if isinstance(index, (int, np.integer)) else index]
        offsets = self.images.offsets
        taken = np.diff(np.searchsorted(rows, offsets))  # rows inside each part (rows sorted)
        whole = [p for p, n in zip(self.parts, taken) if n and n == len(p)]
        if len(rows) and (np.diff(rows) > 0).all() and sum(len(p) for p in whole) == len(rows):
            return whole[0] if len(whole) == 1 else LabeledParts(whole)
        return LabeledImages(self.images[rows], self.labels[rows], self.class_names, self.source[rows], self.parent[rows])

    def concatenate(self) -> LabeledImages:
        return self.parts[0] if len(self.parts) == 1 else LabeledImages.concatenate(self.parts)
