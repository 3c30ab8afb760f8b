"""LabeledImages: validation, slicing, concatenation, counts, fingerprint."""

import numpy as np
import pytest

from augmentgan.data import LabeledImages, Source
from augmentgan.errors import DataError


def make(n=6, h=4, w=4, c=1, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return LabeledImages(rng.integers(0, 256, (n, h, w, c), dtype=np.uint8), np.arange(n) % k, [f"c{i}" for i in range(k)])


def test_defaults_and_counts():
    d = make()
    assert len(d) == 6 and d.num_classes == 3 and d.image_shape == (4, 4, 1)
    assert d.source.dtype == np.uint8 and (d.source == Source.real).all()
    assert (d.parent == -1).all() and d.labels.dtype == np.int64
    assert d.class_counts().tolist() == [2, 2, 2]
    assert d.source_counts()["real"] == 6 and d.source_counts()["gan"] == 0


def test_grayscale_without_channel_axis_gets_one():
    d = LabeledImages(np.zeros((2, 5, 5), np.uint8), [0, 1], ["a", "b"])
    assert d.images.shape == (2, 5, 5, 1)


def test_empty_class_counted_as_zero():
    d = LabeledImages(np.zeros((2, 3, 3, 3), np.uint8), [0, 0], ["a", "b"])
    assert d.class_counts().tolist() == [2, 0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(images=np.zeros((2, 4, 4, 1), np.float32), labels=[0, 1]), "uint8"),
        (dict(images=np.zeros((2, 4, 4, 2), np.uint8), labels=[0, 1]), "C in"),
        (dict(images=np.zeros((2, 4, 4, 1), np.uint8), labels=[0, 1, 1]), "3 labels for 2 images"),
        (dict(images=np.zeros((2, 4, 4, 1), np.uint8), labels=[0, 5]), r"labels must be in \[0, 1\]"),
        (dict(images=np.zeros((2, 4, 4, 1), np.uint8), labels=[0, 1], source=[0, 9]), "source values"),
    ],
)
def test_invalid_inputs_raise_data_error(kwargs, match):
    with pytest.raises(DataError, match=match):
        LabeledImages(class_names=["a", "b"], **kwargs)


def test_duplicate_class_names_rejected():
    with pytest.raises(DataError, match="unique"):
        LabeledImages(np.zeros((1, 2, 2, 1), np.uint8), [0], ["a", "a"])


def test_slicing_keeps_provenance():
    d = LabeledImages(np.arange(4 * 4, dtype=np.uint8).reshape(4, 2, 2, 1), [0, 1, 0, 1], ["a", "b"], [0, 3, 1, 2], [-1, -1, 0, 1])
    s = d[np.array([1, 3])]
    assert s.labels.tolist() == [1, 1] and s.source.tolist() == [3, 2] and s.parent.tolist() == [-1, 1]
    assert d[2].images.shape == (1, 2, 2, 1)
    assert d.select_classes([0]).labels.tolist() == [0, 0]


def test_concatenate_and_class_source_table():
    a = make(4, k=2, seed=1)
    b = LabeledImages(a.images[:2], [1, 1], a.class_names, [Source.gan, Source.smote], [0, 1])
    c = a + b
    assert len(c) == 6
    table = c.counts_by_class_and_source()
    assert table[1, Source.gan] == 1 and table[1, Source.smote] == 1 and table[0, Source.real] == 2
    with pytest.raises(DataError, match="different classes"):
        LabeledImages.concatenate([a, LabeledImages(a.images, a.labels, ["x", "y"])])
    with pytest.raises(DataError, match="shape"):
        LabeledImages.concatenate([a, make(2, h=5, w=5, k=2)])


def test_fingerprint_tracks_pixels_labels_and_names_not_provenance():
    d = make()
    base = d.fingerprint()
    assert base == make().fingerprint()
    img = d.images.copy()
    img[0, 0, 0, 0] ^= 1
    assert LabeledImages(img, d.labels, d.class_names).fingerprint() != base
    assert LabeledImages(d.images, d.labels[::-1].copy(), d.class_names).fingerprint() != base
    assert LabeledImages(d.images, d.labels, ["x", "c1", "c2"]).fingerprint() != base
    assert LabeledImages(d.images, d.labels, d.class_names, np.full(6, 3), np.zeros(6)).fingerprint() == base
    # same bytes, different shape
    assert LabeledImages(d.images.reshape(6, 2, 8, 1), d.labels, d.class_names).fingerprint() != base
