"""SMOTE on images: float interpolation (no uint8 wrap), exact counts, tiny classes, parents."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from augmentgan.augment.smote import SMOTE_METHODS, smote_class_counts
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import AugmentganWarning, ConfigError, DataError


def _data(counts: tuple[int, ...], lo: int = 10, hi: int = 200, seed: int = 0, spread: float = 25) -> LabeledImages:
    """Class k: images around a class-specific level, pixels within [lo, hi]."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k, n in enumerate(counts):
        centre = lo + (hi - lo) * (k + 0.5) / len(counts)
        x = np.clip(rng.normal(centre, spread, (n, 5, 5, 1)), lo, hi)
        images.append(np.rint(x).astype(np.uint8))
        labels += [k] * n
    return LabeledImages(np.concatenate(images), np.array(labels), tuple(f"c{k}" for k in range(len(counts))))


def test_interpolates_in_float_and_stays_inside_the_class_range() -> None:
    # values 10..200 interpolated in uint8 would wrap around to 243-249
    data = _data((30, 12), lo=10, hi=200)
    new = smote_class_counts(data, {1: 30}, "smote", seed=0)
    assert new.images.dtype == np.uint8 and new.images.shape == (18, 5, 5, 1)
    members = data.images[data.labels == 1].astype(int)
    assert (new.images >= members.min(axis=0)).all() and (new.images <= members.max(axis=0)).all()
    assert new.images.max() <= 200 and new.images.min() >= 10
    assert (new.source == Source.smote).all() and (new.labels == 1).all()


@pytest.mark.parametrize("method", sorted(SMOTE_METHODS))
def test_every_method_returns_exactly_the_requested_counts(method: str) -> None:
    data = _data((40, 15, 9), seed=1, spread=90)  # overlapping classes: every variant finds work
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AugmentganWarning)
        new = smote_class_counts(data, {0: 40, 1: 33, 2: 25}, method, seed=0, k_neighbors=3)
    assert np.bincount(new.labels, minlength=3).tolist() == [0, 18, 16]
    assert (data.labels[new.parent[new.parent >= 0]] == new.labels[new.parent >= 0]).all()


def test_borderline_shortfall_is_topped_up_and_said() -> None:
    # far-apart classes have no "danger" samples: BorderlineSMOTE alone returns nothing
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.integers(0, 20, (30, 4, 4, 1)), rng.integers(230, 256, (12, 4, 4, 1))]).astype(np.uint8)
    data = LabeledImages(images, np.array([0] * 30 + [1] * 12), ("a", "b"))
    with pytest.warns(AugmentganWarning, match=r"borderline-smote made 0 of 18 samples for class 'b' \(it interpolates only from images in danger "
                                               r"\(more than half, not all, of their 10 nearest of other classes\), and none of this class's is\); "
                                               r"the other 18 come from plain SMOTE"):
        new = smote_class_counts(data, {1: 30}, "borderline-smote", seed=0)
    assert len(new) == 18 and (new.labels == 1).all() and new.images.min() >= 230


def test_a_variant_that_cannot_work_on_the_data_says_what_to_use() -> None:
    # seven images cannot be split into k-means SMOTE's 8 clusters
    with pytest.raises(DataError, match=r"kmeans-smote could not grow class\(es\) 'c1' \(.*\); use smote.method=smote"):
        smote_class_counts(_data((4, 3)), {1: 4}, "kmeans-smote", seed=0, k_neighbors=2)


def test_adasyn_gives_a_class_set_apart_to_plain_smote_and_grows_the_others() -> None:
    # c2 lies far from the others (no image of another class among any of its neighbours): ADASYN
    # alone raises for every class; here c1 (overlapping c0) is grown by ADASYN, c2 by plain SMOTE
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.integers(0, 120, (30, 4, 4, 1)), rng.integers(10, 130, (12, 4, 4, 1)), rng.integers(235, 256, (8, 4, 4, 1))])
    data = LabeledImages(images.astype(np.uint8), np.array([0] * 30 + [1] * 12 + [2] * 8), ("c0", "c1", "c2"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = smote_class_counts(data, {1: 30, 2: 30}, "adasyn", seed=0, k_neighbors=3)
    said = [str(w.message) for w in caught if issubclass(w.category, AugmentganWarning)]
    assert [m for m in said if "'c2'" in m] == ["adasyn made 0 of 22 samples for class 'c2' (none of its images has an image of another class among "
                                                "its 3 nearest, and ADASYN weighs by those); the other 22 come from plain SMOTE"]
    assert not [m for m in said if "'c1'" in m and "made 0" in m]
    assert np.bincount(new.labels, minlength=3).tolist() == [0, 18, 22] and new.images[new.labels == 2].min() >= 235


def test_k_neighbors_lowered_for_a_small_class_with_a_warning() -> None:
    data = _data((20, 3))
    with pytest.warns(AugmentganWarning, match=r"k_neighbors lowered from 5 to 2: class 'c1' has only 3 images"):
        new = smote_class_counts(data, {1: 10}, "smote", seed=0)
    assert len(new) == 7


def test_single_image_class_and_single_class_data_are_refused() -> None:
    with pytest.raises(DataError, match=r"class 'c1' has 1 image"):
        smote_class_counts(_data((20, 1)), {1: 5}, "smote", seed=0)
    with pytest.raises(DataError, match="two classes"):
        smote_class_counts(_data((20, 0)), {0: 25}, "smote", seed=0)
    with pytest.raises(ConfigError, match="below"):
        smote_class_counts(_data((20, 5)), {0: 10}, "smote", seed=0)
    with pytest.raises(ConfigError, match="smote.method"):
        smote_class_counts(_data((20, 5)), {1: 10}, "smotе-typo", seed=0)


def test_parent_is_the_nearer_end_of_the_segment() -> None:
    # a class of two images: every synthetic sample lies between them
    data = _data((20, 2), seed=3)
    with pytest.warns(AugmentganWarning, match="lowered from 5 to 1"):
        new = smote_class_counts(data, {1: 12}, "smote", seed=0)
    a, b = np.flatnonzero(data.labels == 1)
    xa, xb = data.images[a].astype(float), data.images[b].astype(float)
    expected = [a if np.linalg.norm(x - xa) <= np.linalg.norm(x - xb) else b for x in new.images.astype(float)]
    assert new.parent.tolist() == [int(e) for e in expected]


def test_parents_index_the_input_dataset_with_empty_classes_present() -> None:
    data = _data((15, 0, 6), seed=2)
    new = smote_class_counts(data, {2: 15}, "smote", seed=0)
    assert (new.parent >= 0).all() and (data.labels[new.parent] == 2).all()


def test_same_seed_same_bytes() -> None:
    data = _data((25, 7))
    a = smote_class_counts(data, {1: 25}, "smote", seed=4)
    b = smote_class_counts(data, {1: 25}, "smote", seed=4)
    assert a.images.tobytes() == b.images.tobytes() and (a.parent == b.parent).all()


def test_kmeans_smote_grows_the_classes_it_can_and_gives_the_rest_to_plain_smote() -> None:
    # class a: 7 tight blobs far apart; class b: one blob of its own; class c: 6 images, one in
    # each of six of a's blobs, so no k-means cluster holds k + 1 of them. imbalanced-learn's
    # KMeansSMOTE alone raises for every class; here b is grown by k-means SMOTE, c by plain SMOTE.
    rng = np.random.default_rng(0)
    centres = rng.permutation(np.linspace(10, 245, 8))[:, None] + rng.normal(0, 4, (8, 16))
    images, labels = [], []
    for blob in range(7):
        images.append(centres[blob] + rng.normal(0, 2, (15, 16)))
        labels += [0] * 15
    images.append(centres[7] + rng.normal(0, 2, (20, 16)))
    labels += [1] * 20
    images.append(centres[:6] + rng.normal(0, 2, (6, 16)))
    labels += [2] * 6
    data = LabeledImages(np.rint(np.clip(np.concatenate(images), 0, 255)).reshape(-1, 4, 4, 1).astype(np.uint8), np.array(labels), ("a", "b", "c"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = smote_class_counts(data, {1: 105, 2: 105}, "kmeans-smote", seed=0, k_neighbors=3)
    said = [str(w.message) for w in caught if issubclass(w.category, AugmentganWarning)]
    assert len(said) == 1 and re.search(r"kmeans-smote made 0 of 99 samples for class 'c' \(none of the 8 k-means clusters holds 4 or more of its "
                                         r"images .*\); the other 99 come from plain SMOTE", said[0]), said
    assert np.bincount(new.labels, minlength=3).tolist() == [0, 85, 99]
    b = new.images[new.labels == 1].reshape(85, -1).astype(float)
    assert np.abs(b - centres[7]).max() < 15  # k-means SMOTE inside b's own blob
    assert (data.labels[new.parent[new.parent >= 0]] == new.labels[new.parent >= 0]).all()


def test_kmeans_smote_weighs_a_large_spread_cluster_without_overflow() -> None:
    # 64x64 RGB: seven tight groups of class a, and class b's 250 images, +-25 around 230, a cluster
    # of its own. imbalanced-learn weighs a cluster by its mean distance ** 13.5 (for 250 images),
    # which overflows float32 (the weight NaN, KMeansSMOTE fails) but not float64
    rng = np.random.default_rng(0)
    levels = [np.full((20, 64, 64, 3), 30 * i) + rng.integers(0, 2, (20, 64, 64, 3)) for i in range(7)]
    b = rng.integers(205, 256, (250, 64, 64, 3))
    data = LabeledImages(np.concatenate(levels + [b]).astype(np.uint8), np.array([0] * 140 + [1] * 250), ("a", "b"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = smote_class_counts(data, {1: 400}, "kmeans-smote", seed=0)
    assert not [w for w in caught if issubclass(w.category, AugmentganWarning)]  # k-means SMOTE made them all
    assert len(new) == 150 and (new.labels == 1).all() and new.images.min() >= 205


def test_svm_smote_gives_a_class_of_noise_support_vectors_to_plain_smote() -> None:
    # c2's three images each sit on an image of c0, so every support vector of c2 has only other
    # classes' images among its nearest: SVM-SMOTE calls them noise and alone raises for every class
    rng = np.random.default_rng(0)
    c0 = rng.integers(0, 120, (40, 4, 4, 1))
    c1 = rng.integers(10, 130, (15, 4, 4, 1))
    c2 = np.clip(c0[:3] + rng.integers(-2, 3, (3, 4, 4, 1)), 0, 255)
    data = LabeledImages(np.concatenate([c0, c1, c2]).astype(np.uint8), np.array([0] * 40 + [1] * 15 + [2] * 3), ("c0", "c1", "c2"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = smote_class_counts(data, {1: 40, 2: 40}, "svm-smote", seed=0, k_neighbors=2)
    said = [str(w.message) for w in caught if issubclass(w.category, AugmentganWarning)]
    assert any(m.startswith("svm-smote made 0 of 37 samples for class 'c2' (every support vector") for m in said), said
    assert not [m for m in said if "'c1'" in m and "made 0" in m], said
    assert np.bincount(new.labels, minlength=3).tolist() == [0, 25, 37]


def test_kmeans_smote_samples_get_their_parent_from_the_whole_cluster() -> None:
    # k-means SMOTE pairs an image with any image of its cluster, not only its nearest ones: the other end
    # of a sample's segment can lie beyond every neighbour set (probe: 5 of 983 on digits-lt had parent -1)
    from augmentgan.data.builtin import digits_lt

    data = digits_lt()
    top = int(data.class_counts().max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AugmentganWarning)  # the rarest classes get plain SMOTE, said in a warning
        new = smote_class_counts(data, {c: top for c in range(data.num_classes)}, "kmeans-smote", seed=0)
    assert (new.parent >= 0).all(), int((new.parent < 0).sum())
    assert (data.labels[new.parent] == new.labels).all()
