"""Built-in datasets that need no download (``builtin:NAME``).

- ``digits``: scikit-learn's 1,797 handwritten digits, 8x8 gray (C=1), values 0..16 scaled to
  0..255 (``round(v * 255 / 16)``); classes "0".."9" with 178, 182, 177, 183, 181, 182, 181,
  179, 174, 180 images.
- ``digits-lt``: a long-tailed subset: the first n_k images of class k in the dataset's order,
  with n_k = round(150 * (8 / 150) ** (k / 9)) = 150, 108, 78, 56, 41, 29, 21, 15, 11, 8
  (517 images, imbalance ratio 18.75). Deterministic: no random numbers are involved.
- ``digits-lt-test``: a balanced test set for ``digits-lt``: the last 28 images of every class in
  the dataset's order (280 images; 28 is what class "0" has left after its 150), disjoint from
  ``digits-lt`` - e.g. ``augmentgan utility builtin:digits-lt --test builtin:digits-lt-test``.
- ``digits-lt-val``: a validation set for ``digits-lt`` (``plan.auto.validation``): of every class
  the first 28 images after its ``digits-lt`` images that are not in ``digits-lt-test`` (28 for
  classes 1-9; class "0" has none left: 150 + 28 = its 178), disjoint from both.

``size`` resizes with Lanczos (e.g. 16 or 32), applied by :func:`augmentgan.data.load`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from augmentgan.data.types import LabeledImages
from augmentgan.errors import DataError

DIGITS_LT_COUNTS: tuple[int, ...] = tuple(round(150 * (8 / 150) ** (k / 9)) for k in range(10))


def digits() -> LabeledImages:
    """scikit-learn's 8x8 digits as uint8 (N, 8, 8, 1)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return LabeledImages(images, bunch.target.astype(np.int64), tuple(str(i) for i in range(10)))


def digits_lt() -> LabeledImages:
    """The long-tailed digits subset (counts in :data:`DIGITS_LT_COUNTS`)."""
    full = digits()
    keep = np.zeros(len(full), bool)
    for k, n in enumerate(DIGITS_LT_COUNTS):
        keep[np.flatnonzero(full.labels == k)[:n]] = True
    return full[keep]


DIGITS_LT_TEST_PER_CLASS = 28


def digits_lt_test() -> LabeledImages:
    """The last :data:`DIGITS_LT_TEST_PER_CLASS` images of every class (none of them in ``digits-lt``)."""
    full = digits()
    keep = np.zeros(len(full), bool)
    for k in range(10):
        keep[np.flatnonzero(full.labels == k)[-DIGITS_LT_TEST_PER_CLASS:]] = True
    return full[keep]


def digits_lt_val() -> LabeledImages:
    """Per class the first :data:`DIGITS_LT_TEST_PER_CLASS` images between ``digits-lt`` and ``digits-lt-test`` (none of class "0")."""
    full = digits()
    keep = np.zeros(len(full), bool)
    for k, n in enumerate(DIGITS_LT_COUNTS):
        keep[np.flatnonzero(full.labels == k)[n:-DIGITS_LT_TEST_PER_CLASS][:DIGITS_LT_TEST_PER_CLASS]] = True
    return full[keep]


BUILTINS: dict[str, Callable[[], LabeledImages]] = {"digits": digits, "digits-lt": digits_lt, "digits-lt-test": digits_lt_test, "digits-lt-val": digits_lt_val}


def read_builtin(name: str) -> LabeledImages:
    """A built-in dataset by name; :class:`DataError` naming the valid names otherwise."""
    try:
        factory = BUILTINS[name]
    except KeyError:
        raise DataError(f"unknown built-in dataset {name!r}; choose one of {', '.join('builtin:' + n for n in BUILTINS)}") from None
    return factory()
