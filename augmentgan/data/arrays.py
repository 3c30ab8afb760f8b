"""Turning foreign arrays (NPZ, other people's HDF5) into :class:`LabeledImages`.

Rules (documented in the README):

- Layouts: (N, H, W), (N, H, W, C) and (N, C, H, W) with C in {1, 3}; a shape that fits both
  4-D layouts is refused.
- Pixel values, decided on the whole array: uint8 as is; bool as 0/255; other integers in
  0..255 cast, else in 0..65535 scaled like 16-bit images; floats all in [0, 1] scaled by 255,
  else in [0, 255] rounded. NaN/inf or anything out of range is refused.
- Labels: (N,), (N, 1) or one-hot (N, K); whole numbers. Without class names, the distinct
  label values sorted become the classes 0..K-1, named after the values (so {3, 7} become
  indices 0, 1 named "3", "7"). With class names, labels index into them.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np

from augmentgan.data.images import float_to_uint8, sixteen_to_uint8
from augmentgan.data.types import LabeledImages
from augmentgan.errors import DataError

KEYS_VALUE = "IMAGES,LABELS[,CLASS_NAMES]"  # what --keys / data.keys takes, in hints
_SHAPE_HELP = "expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3"


def _to_nhwc(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim == 3:
        return arr[..., None]
    if arr.ndim != 4:
        raise DataError(f"{where}: images have shape {arr.shape}; {_SHAPE_HELP}")
    last_ok, first_ok = arr.shape[3] in (1, 3), arr.shape[1] in (1, 3)
    if last_ok and first_ok:
        raise DataError(f"{where}: cannot tell whether shape {arr.shape} is (N, H, W, C) or (N, C, H, W); transpose it to (N, H, W, C) first")
    if last_ok:
        return arr
    if first_ok:
        return arr.transpose(0, 2, 3, 1)
    raise DataError(f"{where}: images have shape {arr.shape}; {_SHAPE_HELP}")


def _to_uint8(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        return float_to_uint8(arr, where)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0:
            return arr.astype(np.uint8)
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 255:
            return arr.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return sixteen_to_uint8(arr)
        raise DataError(f"{where}: integer pixel values must lie in 0..255 (or 0..65535 for 16-bit), found {lo}..{hi}; rescale them")
    raise DataError(f"{where}: images have dtype {arr.dtype}; expected integer or float pixels")


def images_from_array(arr: np.ndarray, where: str = "images") -> np.ndarray:
    """Foreign image array to (N, H, W, C) uint8, C-contiguous (the readers' rules, module doc); ``where`` names it in errors."""
    arr = np.asarray(arr)
    return np.ascontiguousarray(_to_uint8(_to_nhwc(arr, where), where))


def _label_vector(labels: np.ndarray, where: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        return labels[:, 0]
    if labels.ndim == 2:
        if np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all():
            return labels.argmax(axis=1)
        raise DataError(f"{where}: labels have shape {labels.shape} but are not one-hot; give one integer label per image")
    if labels.ndim != 1:
        raise DataError(f"{where}: labels have shape {labels.shape}; give one integer label per image (shape (N,))")
    return labels


def labels_from_array(
    labels: np.ndarray, n_images: int, where: str, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Foreign labels to (int64 indices, class names); see the module rules."""
    labels = _label_vector(np.asarray(labels), where)
    if labels.shape[0] != n_images:
        raise DataError(f"{where}: {labels.shape[0]} labels for {n_images} images; every image needs exactly one label")
    if labels.dtype.kind not in "biuf":
        raise DataError(f"{where}: labels have dtype {labels.dtype}; expected integers")
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.rint(labels)).all()):
        raise DataError(f"{where}: labels must be whole numbers (found NaN, inf or fractions)")
    if class_names is not None:
        names = tuple(str(c) for c in class_names)
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(
                f"{where}: labels range {labels.min():g}..{labels.max():g} but there are {len(names)} class names; "
                "labels must index the class names (0..K-1)"
            )
        return labels.astype(np.int64), names
    values, index = np.unique(labels, return_inverse=True)
    names = tuple(str(int(v)) if labels.dtype.kind == "f" else str(v) for v in values)
    return index.astype(np.int64).reshape(-1), names


def decode_names(raw: np.ndarray, where: str) -> list[str]:
    """A class-names array (str or UTF-8 bytes) to a list of str."""
    raw = np.asarray(raw).reshape(-1)
    if raw.dtype.kind == "S" or raw.dtype == object:
        try:
            return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw]
        except UnicodeDecodeError:
            raise DataError(f"{where}: class names are not valid UTF-8") from None
    if raw.dtype.kind == "U":
        return [str(v) for v in raw]
    raise DataError(f"{where}: class names have dtype {raw.dtype}; expected strings")


def labeled_from_arrays(
    images: np.ndarray, labels: np.ndarray, where: str, class_names: Sequence[str] | None = None, labels_where: str | None = None
) -> LabeledImages:
    """Validate and convert foreign arrays to :class:`LabeledImages` (errors name ``where``; the labels' own
    errors ``labels_where`` when given, e.g. ``FILE:y`` beside ``FILE:x``)."""
    imgs = images_from_array(images, where)
    idx, names = labels_from_array(labels, imgs.shape[0], labels_where or where, class_names)
    if imgs.shape[0] == 0:
        raise DataError(f"{where}: contains no images")
    try:
        return LabeledImages(imgs, idx, names)
    except DataError as err:
        raise DataError(f"{where}: {err}") from None


def row_keys(images: Iterable[np.ndarray]) -> list[bytes]:
    """A digest per image (byte-identical images, identical keys). Row by row, not reshape(len, -1):
    that fails for no images."""
    return [hashlib.sha1(np.ascontiguousarray(row).tobytes()).digest() for row in images]


def twin_groups(images: Iterable[np.ndarray]) -> np.ndarray:
    """For every image, the row of the first image identical to it (itself when it has no earlier twin)."""
    first: dict[bytes, int] = {}
    return np.array([first.setdefault(key, i) for i, key in enumerate(row_keys(images))], np.int64)

