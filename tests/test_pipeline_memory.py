"""Memory stays bounded in expand (issue 18): the holdout split and the GAN's training images add no
second copy of the dataset; the lock hashes the written parts as their concatenation."""

from __future__ import annotations

import numpy as np
import torch

from augmentgan.data.types import LabeledImages, LabeledParts
from augmentgan.gan.trainer import prepare_images
from augmentgan.pipeline import SPLIT_CHUNK, _split_in_place, arrays_sha256, split_holdout


def _data(n: int = 3 * SPLIT_CHUNK + 17) -> LabeledImages:
    rng = np.random.default_rng(0)
    return LabeledImages(rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), rng.integers(0, 4, n), ("a", "b", "c", "d"))


def test_split_in_place_gives_the_rows_of_a_copying_split_in_one_array():
    data = _data()
    train_idx, hold_idx, _ = split_holdout(data, 0.3, np.random.default_rng(5))
    expected_train, expected_hold = data[train_idx], data[hold_idx]  # copies, taken before the move
    buffer = data.images
    train, holdout = _split_in_place(data, train_idx, hold_idx)
    np.testing.assert_array_equal(train.images, expected_train.images)
    np.testing.assert_array_equal(train.labels, expected_train.labels)
    np.testing.assert_array_equal(holdout.images, expected_hold.images)
    assert np.shares_memory(train.images, buffer)  # no second copy of the training rows
    assert np.shares_memory(holdout.images, buffer) and not np.shares_memory(holdout.images, train.images)  # nor of the holdout rows
    assert (train.source == 0).all() and (train.parent == -1).all() and (holdout.parent == -1).all()


def test_lock_hash_of_parts_is_the_hash_of_their_concatenation():
    data = _data(50)
    parts = [data[np.arange(0, 20)], data[np.arange(20, 20)], data[np.arange(20, 50)]]
    assert arrays_sha256(LabeledParts(parts)) == arrays_sha256(LabeledImages.concatenate(parts)) == arrays_sha256(data)


def test_training_images_on_the_cpu_view_the_data():
    data = _data(40)
    x = prepare_images(data, 8, torch.device("cpu"), "resize")
    assert x.shape == (40, 3, 8, 8) and np.shares_memory(x.numpy(), data.images)
    assert torch.equal(x.contiguous(), torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous())
