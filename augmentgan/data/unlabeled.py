"""Unlabeled images (``--unlabeled PATH``, ``data.unlabeled``): a folder of images without class
subfolders, or an HDF5 / NPZ file of images whose labels, if any, are ignored.

They are checked against the labeled data they go with: same size and channel count after the
same ``--size`` / ``--channels`` as the labeled data (:func:`check_unlabeled`). A folder with
class subfolders is refused: it looks like labeled data given in the wrong place.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from augmentgan.data.arrays import images_from_array
from augmentgan.data.builtin import read_builtin
from augmentgan.data.folder import IMAGE_EXTENSIONS, _decode_all, _image_files, _is_hidden, default_workers
from augmentgan.data.hdf5 import open_hdf5
from augmentgan.data.images import Channels, convert_channels, resize_all
from augmentgan.errors import DataError, Flag
from augmentgan.progress import ProgressCallback

#: dataset / array names tried, in order, when no key is given
IMAGE_KEYS = ("images", "x_unlabeled", "x_train", "x", "X", "images_train")


def _folder_files(root: Path) -> list[Path]:
    subfolders = sorted(e.name for e in os.scandir(root) if e.is_dir() and not _is_hidden(e.name) and _image_files(Path(e.path)))
    if subfolders:
        shown = ", ".join(subfolders[:5]) + (" ..." if len(subfolders) > 5 else "")
        raise DataError(
            f"unlabeled folder {root} has class subfolders ({shown}); unlabeled images go directly in one folder "
            "without subfolders - give labeled data as DATA, or move the images up into the folder"
        )
    files = sorted(root / e.name for e in os.scandir(root) if e.is_file() and not _is_hidden(e.name) and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"unlabeled folder {root} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or give an .h5/.npz file")
    return files


def _array(path: Path, key: Optional[str]) -> np.ndarray:
    if path.suffix.lower() in (".h5", ".hdf5"):
        with open_hdf5(path) as f:
            names = [k for k in ([key] if key else IMAGE_KEYS) if k in f]
            if not names:
                raise DataError(f"unlabeled file {path} has no images dataset ({'/'.join([key] if key else IMAGE_KEYS)}; it has {', '.join(f.keys()) or 'none'}); pass the key as PATH:KEY")
            return f[names[0]][()]
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = [k for k in ([key] if key else IMAGE_KEYS) if k in archive.files]
            if not names:
                raise DataError(f"unlabeled file {path} has no images array ({'/'.join([key] if key else IMAGE_KEYS)}; it has {', '.join(archive.files) or 'none'}); pass the key as PATH:KEY")
            return archive[names[0]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as err:
        raise DataError(f"unlabeled file {path} is not a readable .npz archive ({' '.join(str(err).split())}); check the file") from None


def read_unlabeled(
    spec: str | os.PathLike, *, channels: Channels = "auto", size: Optional[int] = None, callback: Optional[ProgressCallback] = None
) -> np.ndarray:
    """uint8 images ``(N, H, W, C)`` from a folder without subfolders, an .h5/.hdf5, an .npz (``PATH:KEY`` names the array) or builtin:NAME (its images)."""
    text = str(spec)
    key = None
    if text.startswith("builtin:"):  # a labeled built-in set's images, its labels left out
        images = read_builtin(text.removeprefix("builtin:")).images
        return np.ascontiguousarray(convert_channels(resize_all(images, size) if size else images, channels))
    if ":" in text and not Path(text).exists():
        text, key = text.rsplit(":", 1)
    path = Path(text)
    if not path.exists():
        raise DataError(f"unlabeled images {path} do not exist; give a folder of images (no class subfolders), an .h5/.hdf5 or an .npz file")
    if path.is_dir():
        decoded, _ = _decode_all(_folder_files(path), channels=channels, size=size, skip_bad=False, workers=default_workers(), callback=callback)
        images = np.stack(decoded)  # type: ignore[arg-type]  # skip_bad=False: no None
    elif path.suffix.lower() in (".h5", ".hdf5", ".npz"):
        images = images_from_array(_array(path, key), f"{path}:{key or 'images'}")
        images = convert_channels(resize_all(images, size) if size else images, channels)
    else:
        raise DataError(f"unlabeled images {path}: unknown format {path.suffix!r}; give a folder of images, an .h5/.hdf5 or an .npz file")
    if len(images) == 0:
        raise DataError(f"unlabeled images {path} hold no images; give at least one or drop --unlabeled")
    return np.ascontiguousarray(images)


def check_unlabeled(images: np.ndarray, image_shape: tuple[int, int, int], where: str) -> np.ndarray:
    """``images`` if they have the labeled data's ``(H, W, C)``, else a one-line DataError naming both and the fix."""
    got = tuple(images.shape[1:])
    if got != tuple(image_shape):
        (h, w, c), (h2, w2, c2) = image_shape, got
        fix: list = []
        if (h2, w2) != (h, w):
            fix += [f"resize them to {w}x{h}", Flag("size", "N", before=" (or ", after=")")]
        if c2 != c:
            fix += [" and " if fix else "", f"convert them to {c} channel(s)", Flag("channels", "C", before=" (or ", after=")")]
        raise DataError(f"unlabeled images {where} are {w2}x{h2} with {c2} channel(s), the labeled data {w}x{h} with {c}: ", *fix)
    return images
