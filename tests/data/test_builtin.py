"""Built-in datasets: digits, the deterministic long-tailed digits-lt and its balanced test set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from augmentgan.data import DIGITS_LT_COUNTS, load
from augmentgan.errors import DataError


def test_digits_scaled_to_0_255():
    data = load("builtin:digits")
    raw = load_digits()
    assert data.image_shape == (8, 8, 1) and len(data) == 1797
    assert data.class_names == tuple(str(i) for i in range(10))
    np.testing.assert_array_equal(data.images[..., 0], np.rint(raw.images * 255 / 16).astype(np.uint8))
    assert data.images.max() == 255 and data.class_counts().tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_lt_counts_are_exact_and_deterministic():
    assert DIGITS_LT_COUNTS == (150, 108, 78, 56, 41, 29, 21, 15, 11, 8)
    a, b = load("builtin:digits-lt"), load("builtin:digits-lt")
    assert a.class_counts().tolist() == list(DIGITS_LT_COUNTS) and len(a) == 517
    assert a.fingerprint() == b.fingerprint()
    full = load("builtin:digits")
    first_nines = full.images[full.labels == 9][:8]
    np.testing.assert_array_equal(a.images[a.labels == 9], first_nines)


def test_digits_lt_test_is_balanced_and_disjoint_from_digits_lt():
    test, train, full = load("builtin:digits-lt-test"), load("builtin:digits-lt"), load("builtin:digits")
    assert test.class_counts().tolist() == [28] * 10 and test.class_names == train.class_names
    assert not {img.tobytes() for img in test.images} & {img.tobytes() for img in train.images}
    np.testing.assert_array_equal(test.images[test.labels == 0], full.images[full.labels == 0][-28:])


def test_digits_resized():
    data = load("builtin:digits-lt", size=16)
    assert data.image_shape == (16, 16, 1) and len(data) == 517
    assert load("builtin:digits-lt", channels=3).image_shape == (8, 8, 3)


def test_unknown_builtin_lists_the_names():
    with pytest.raises(DataError, match="builtin:digits, builtin:digits-lt"):
        load("builtin:mnist")


def test_digits_lt_val_lies_between_digits_lt_and_its_test_set():
    val, train, test, full = load("builtin:digits-lt-val"), load("builtin:digits-lt"), load("builtin:digits-lt-test"), load("builtin:digits")
    assert val.class_counts().tolist() == [0] + [28] * 9 and val.class_names == train.class_names  # class 0: 150 + 28 = all 178
    keys = {img.tobytes() for img in val.images}
    assert not keys & {img.tobytes() for img in train.images} and not keys & {img.tobytes() for img in test.images}
    np.testing.assert_array_equal(val.images[val.labels == 9], full.images[full.labels == 9][8:36])  # right after digits-lt's 8 nines
