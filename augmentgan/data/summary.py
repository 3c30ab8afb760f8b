"""What ``augmentgan inspect`` reports: sizes, counts per class and source, imbalance, warnings."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from augmentgan.data.folder import read_folder_index
from augmentgan.data.hdf5 import read_hdf5_index
from augmentgan.data.images import check_channels, check_size
from augmentgan.data.io import load, reader_kind
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source

SMOTE_MIN_SAMPLES = 6
"""SMOTE with its default k_neighbors=5 needs k + 1 samples of a class."""
GAN_MIN_SAMPLES = 20
"""Below this many images a class is thin for GAN training (a rule of thumb, not a hard limit)."""


def summarize_counts(image_shape: Sequence[int], labels: np.ndarray, source: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """A JSON-ready summary from labels and source flags alone.

    Keys: count, height, width, channels, num_classes, classes (index, name, count, by_source),
    by_source, imbalance_ratio (largest / smallest non-empty class; None without images),
    warnings (one line each: empty classes, classes under :data:`SMOTE_MIN_SAMPLES` or
    :data:`GAN_MIN_SAMPLES` images).
    """
    h, w, c = (int(v) for v in image_shape)
    table = np.zeros((len(class_names), len(Source)), np.int64)
    np.add.at(table, (labels, source), 1)
    counts = table.sum(axis=1)
    classes = [
        {"index": i, "name": name, "count": int(counts[i]), "by_source": {s: int(table[i, j]) for j, s in enumerate(SOURCE_NAMES)}}
        for i, name in enumerate(class_names)
    ]
    present = [int(n) for n in counts if n > 0]
    warnings = []
    empty = [cl["name"] for cl in classes if cl["count"] == 0]
    if empty:
        warnings.append(f"classes with no images: {', '.join(empty)}")
    smote = [f"{cl['name']} ({cl['count']})" for cl in classes if 0 < cl["count"] < SMOTE_MIN_SAMPLES]
    if smote:
        warnings.append(f"too small for SMOTE (needs at least {SMOTE_MIN_SAMPLES} images, k_neighbors=5): {', '.join(smote)}")
    thin = [f"{cl['name']} ({cl['count']})" for cl in classes if 0 < cl["count"] < GAN_MIN_SAMPLES]
    if thin:
        warnings.append(f"thin for GAN training (fewer than {GAN_MIN_SAMPLES} images; consider DiffAugment or the small-data preset): {', '.join(thin)}")
    return {
        "count": int(len(labels)),
        "height": h,
        "width": w,
        "channels": c,
        "num_classes": len(class_names),
        "classes": classes,
        "by_source": {s: int(n) for s, n in zip(SOURCE_NAMES, table.sum(axis=0))},
        "imbalance_ratio": (max(present) / min(present)) if present else None,
        "warnings": warnings,
    }


def summarize(data: LabeledImages) -> dict[str, Any]:
    """:func:`summarize_counts` of a loaded dataset."""
    return summarize_counts(data.image_shape, data.labels, data.source, data.class_names)


def describe(spec: str | os.PathLike, **load_options: Any) -> dict[str, Any]:
    """Summary of a data spec. An augmentgan HDF5 file read as stored (no keys, size or
    channels) is summarised from its labels alone, without loading the images; a folder's images
    are decoded and checked one window at a time and not kept (:func:`read_folder_index`)."""
    as_stored = load_options.get("keys") is None and load_options.get("size") is None
    kind = reader_kind(spec)
    if as_stored and check_channels(load_options.get("channels", "auto")) == "auto" and kind == "hdf5":
        index = read_hdf5_index(spec)
        if index is not None:
            return summarize_counts(*index)
    if kind == "folder" and load_options.get("keys") is None:
        o = load_options
        shape, labels, source, _, names = read_folder_index(
            spec, channels=check_channels(o.get("channels", "auto")), size=check_size(o.get("size")), skip_bad=bool(o.get("skip_bad", False)),
            workers=o.get("workers"), callback=o.get("callback"),
        )
        return summarize_counts(shape, labels, source, names)
    return summarize(load(spec, **load_options))
