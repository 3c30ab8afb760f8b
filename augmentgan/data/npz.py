"""NPZ archives of image and label arrays.

Keys, first match wins: ``x_<split>``/``y_<split>``, ``X_<split>``/``y_<split>`` or
``images_<split>``/``labels_<split>`` (split defaults to "train"); then ``x``/``y``, ``X``/``y``
or ``images``/``labels``, which are the "train" split (and any split of an archive without
``<name>_<split>`` arrays: its only set); another split the archive lacks is an error listing the
splits it has. ``keys`` (images, labels[, class names]) overrides this. A
``class_names`` string array names the classes unless a third key is given. Pickled (object) arrays are never loaded.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from augmentgan.data.arrays import KEYS_VALUE, decode_names, labeled_from_arrays
from augmentgan.data.types import LabeledImages
from augmentgan.errors import DataError, Flag

KEY_PAIRS = (("x", "y"), ("X", "y"), ("images", "labels"))
NAMES_KEY = "class_names"
DEFAULT_SPLIT = "train"


def _splits(files: Sequence[str]) -> list[str]:
    """The splits an archive holds: ``<split>`` of every x_<split>/y_<split> style pair, "train" for plain x/y."""
    found = {m.group(2) for k in files if (m := re.fullmatch(r"(x|X|images)_(.+)", k))}
    splits = {s for s in found if any(f"{img}_{s}" in files and f"{lab}_{s}" in files for img, lab in KEY_PAIRS)}
    if any(img in files and lab in files for img, lab in KEY_PAIRS):
        splits.add(DEFAULT_SPLIT)
    return sorted(splits)


def _pick_keys(files: Sequence[str], split: str, path: Path) -> tuple[str, str]:
    for img, lab in KEY_PAIRS:
        if f"{img}_{split}" in files and f"{lab}_{split}" in files:
            return f"{img}_{split}", f"{lab}_{split}"
    has_splits = any(re.fullmatch(r"(x|X|images|y|labels)_.+", k) for k in files)
    if split == DEFAULT_SPLIT or not has_splits:  # plain x/y: the train split, or the only set of an archive without splits
        for img, lab in KEY_PAIRS:
            if img in files and lab in files:
                return img, lab
    splits = _splits(files)
    hint = (f"; available splits: {', '.join(splits)}", Flag("split", before=" (", after=")")) if splits else ()
    raise DataError(
        f"{path} has no x/y or images/labels arrays for split {split!r} (arrays: {', '.join(files) or 'none'})", *hint,
        Flag("keys", KEYS_VALUE, before="; or "),
    )


def read_npz(path: str | os.PathLike, *, keys: Sequence[str] | None = None, split: str = DEFAULT_SPLIT) -> LabeledImages:
    """Read an NPZ archive (see the module doc for keys and :mod:`augmentgan.data.arrays` for values)."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # EOFError: an empty file
        raise DataError(f"{path} is not a readable .npz archive ({' '.join(str(err).split())}); check the file") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds a single array, not an .npz archive of images and labels; save it with numpy.savez(path, x=..., y=...)")
    with archive:
        files = list(archive.files)
        keys = list(keys or _pick_keys(files, split, path))
        if len(keys) == 2 and NAMES_KEY in files:
            keys.append(NAMES_KEY)
        missing = [k for k in keys if k not in files]
        if missing:
            raise DataError(f"{path} has no array {missing[0]!r} (arrays: {', '.join(files) or 'none'})", Flag("keys", KEYS_VALUE, before="; "))
        try:
            images, labels = archive[keys[0]], archive[keys[1]]
            names = decode_names(archive[keys[2]], f"{path}:{keys[2]}") if len(keys) > 2 else None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: cannot read arrays {keys[0]!r}/{keys[1]!r} ({' '.join(str(err).split())}); object (pickled) arrays are not loaded") from None
    return labeled_from_arrays(images, labels, f"{path}:{keys[0]}", names, labels_where=f"{path}:{keys[1]}")
